"""Random-looking local parts (``xk7qz9wv3p@``): a documented score, computed in SQL.

The local part is lower-cased, accents stripped, a ``+tag`` dropped and everything but letters
and digits removed, giving ``t`` of length ``n`` (consonant runs are counted with the separators
still in place, so ``b.strzelczyk`` has a run of 4, not 5). Parts shorter than 8 are never scored (too
little evidence: ``jmr82`` is a normal address). Points:

==========================================  ======
feature                                      points
==========================================  ======
a run of 6+ consonants (``y`` is a vowel)        40
... or of exactly 5 (``pschm`` alone is fine)    20
vowel share of the letters < 0.1 (>= 6 letters)  40
... or < 0.2                                     20
letter/digit switches >= 4 (``a8f7k2``)          40
... or exactly 3                                 25
Shannon entropy of ``t`` >= 3.2 bits/char,       20
only for n >= 10 and when the other points
already reach 40 (a booster, not a signal)
==========================================  ======

The score is capped at 100; ``random_local`` is reported from :data:`THRESHOLD` (60) up.
Ordinary names score 0-40: ``p.schmidt`` 20, ``schwarzkopf`` 20, ``maria.fernandez`` 0.
"""

from __future__ import annotations

THRESHOLD = 60
MIN_LENGTH = 8
_CONSONANTS = "bcdfghjklmnpqrstvwxz"


def cleaned_sql(local_sql: str) -> str:
    """SQL: the local part as scored (``t`` above, with ``.`` where separators were)."""
    return f"regexp_replace(strip_accents(lower(split_part({local_sql}, '+', 1))), '[^a-z0-9]+', '.', 'g')"


def random_score_sql(t: str) -> str:
    """SQL: the score of a local part cleaned by :func:`cleaned_sql` (see the module doc), 0-100."""
    runs_in = t  # separators kept as '.', so 'b.strzelczyk' has no 5-consonant run
    t = f"replace({t}, '.', '')"
    n = f"length({t})"
    letters = f"length(regexp_replace({t}, '[^a-z]', '', 'g'))"
    vowels = f"length(regexp_replace({t}, '[^aeiouy]', '', 'g'))"
    switches = f"(length(regexp_replace({t}, '[a-z]+|[0-9]+', 'x', 'g')) - 1)"
    runs = (
        f"(CASE WHEN regexp_matches({runs_in}, '[{_CONSONANTS}]{{6}}') THEN 40 "
        f"WHEN regexp_matches({runs_in}, '[{_CONSONANTS}]{{5}}') THEN 20 ELSE 0 END)"
    )
    vowel_pts = (
        f"(CASE WHEN {letters} < 6 THEN 0 WHEN {vowels} < 0.1 * {letters} THEN 40 "
        f"WHEN {vowels} < 0.2 * {letters} THEN 20 ELSE 0 END)"
    )
    digit_pts = f"(CASE WHEN {switches} >= 4 THEN 40 WHEN {switches} = 3 THEN 25 ELSE 0 END)"
    base = f"({runs} + {vowel_pts} + {digit_pts})"
    cs = f"string_split({t}, '')"
    count = f"length(list_filter({cs}, lambda x: x = c))"
    entropy = (
        f"list_sum(list_transform(list_distinct({cs}), lambda c: -({count} / {n}) * log2({count} / {n})))"
    )
    bonus = f"(CASE WHEN {n} >= 10 AND {base} >= 40 AND {entropy} >= 3.2 THEN 20 ELSE 0 END)"
    return f"(CASE WHEN {n} < {MIN_LENGTH} THEN 0 ELSE least(100, {base} + {bonus}) END)"
