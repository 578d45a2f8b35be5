"""Name keys used by blocking and comparisons: a phonetic key and nickname canonical forms.

Both run once per *distinct* normalised value (see :func:`crmtool.dedupe.prepare.prepare`).
Input is already normalised text: lower case, accents stripped, words separated by one space.
"""

from __future__ import annotations

import csv
import re
from functools import cache, lru_cache
from importlib import resources

LANGUAGES = ("es", "en", "fr", "de", "pt")

_RULES = [
    (re.compile(p), r)
    for p, r in (
        (r"ph", "f"),
        (r"sch", "s"),
        (r"sh", "s"),
        (r"ch", "1"),
        (r"qu", "k"),
        (r"gu(?=[ei])", "g"),
        (r"g(?=[ei])", "j"),
        (r"c(?=[ei])", "s"),
        (r"ck", "k"),
        (r"[cq]", "k"),
        (r"z", "s"),
        (r"x", "ks"),
        (r"[vw]", "b"),
        (r"ll", "y"),
        (r"y", "i"),
        (r"h", ""),
    )
]
#: letters whose runs collapse to one (the alphabet left after the rules above)
_COLLAPSE = "abdefgijklmnoprstu1"
_RUNS = re.compile(f"([{_COLLAPSE}])\\1+")
_LATER_VOWELS = re.compile(r"(?<=.)[aeiou]")


@lru_cache(maxsize=500_000)
def phonetic_word(word: str) -> str:
    """A sound-alike key for one word, tuned for Spanish and good enough for other Latin-script names:
    ``gonzalez``/``gonsales`` -> ``gnsls``, ``vazquez``/``basquez`` -> ``bsks``. Other scripts pass
        through."""
    key = word
    for pattern, repl in _RULES:
        key = pattern.sub(repl, key)
    key = _RUNS.sub(r"\1", key)
    return _LATER_VOWELS.sub("", key) or word[:1]


def phonetic_key(value: str) -> str:
    """Phonetic key of every word, joined by a space."""
    return " ".join(phonetic_word(w) for w in value.split(" ") if w)


@cache
def nickname_table() -> dict[str, str]:
    """nickname -> canonical first name, from the shipped tables (first language listed wins)."""
    from crmtool.normalise import strip_accents

    table: dict[str, str] = {}
    data = resources.files("crmtool") / "data"
    for lang in LANGUAGES:
        text = (data / f"nicknames_{lang}.csv").read_text(encoding="utf-8")
        for row in csv.DictReader(text.splitlines()):
            nick = strip_accents(row["nickname"].strip().lower())
            canon = strip_accents(row["canonical"].strip().lower())
            if nick and canon and nick != canon:
                table.setdefault(nick, canon)
    return table


def canonical_name(value: str) -> str:
    """The canonical form of a (normalised) first name: ``pepe`` -> ``jose``, ``chema`` -> ``jose maria``."""
    table = nickname_table()
    if value in table:
        return table[value]
    first, _, rest = value.partition(" ")
    if rest and first in table:
        return f"{table[first]} {rest}"
    return value


def _sql_word(w: str) -> str:
    """SQL of :func:`phonetic_word` over the word expression ``w`` (DuckDB/RE2: no look-arounds)."""
    x = w
    for old, new in (("ph", "f"), ("sch", "s"), ("sh", "s"), ("ch", "1"), ("qu", "k")):
        x = f"replace({x}, '{old}', '{new}')"
    x = f"regexp_replace({x}, 'gu([ei])', 'g\\1', 'g')"
    x = f"regexp_replace({x}, 'g([ei])', 'j\\1', 'g')"
    x = f"regexp_replace({x}, 'c([ei])', 's\\1', 'g')"
    x = f"replace({x}, 'ck', 'k')"
    x = f"regexp_replace({x}, '[cq]', 'k', 'g')"
    for old, new in (("z", "s"), ("x", "ks"), ("v", "b"), ("w", "b"), ("ll", "y"), ("y", "i"), ("h", "")):
        x = f"replace({x}, '{old}', '{new}')"
    for letter in _COLLAPSE:
        x = f"regexp_replace({x}, '{letter}{letter}+', '{letter}', 'g')"
    return f"coalesce(nullif(left({x}, 1) || regexp_replace(substr({x}, 2), '[aeiou]', '', 'g'), ''), left({w}, 1))"


def phonetic_sql(value: str) -> str:
    """SQL of :func:`phonetic_key` over a normalised text expression (same keys, computed by DuckDB)."""
    words = f"list_filter(string_split({value}, ' '), lambda w: w <> '')"
    return f"array_to_string(list_transform({words}, lambda w: {_sql_word('w')}), ' ')"


def phonetic_table_sql(values: str) -> str:
    """``(v, k)``: :func:`phonetic_sql` of every value of the one-column (``v``) relation ``values``,
    computed once per distinct *word* (names share words: ``garcia lopez``, ``lopez ruiz``) and put back
    together in word order. Same keys as :func:`phonetic_sql` for normalised text (no empty words)."""
    split = "list_filter(string_split(v, ' '), lambda w: w <> '')"
    return f"""WITH __pv AS (SELECT v, {split} AS ws FROM {values}),
        __pw AS (SELECT w, {_sql_word('w')} AS k FROM (SELECT DISTINCT unnest(ws) AS w FROM __pv)),
        __px AS (SELECT v, unnest(ws) AS w, unnest(range(1, len(ws) + 1)) AS i FROM __pv)
        SELECT x.v, string_agg(p.k, ' ' ORDER BY x.i) AS k FROM __px x JOIN __pw p ON p.w = x.w GROUP BY x.v"""
