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
letter/digit switches >= 5 (``c4ca4238a0``)      60
... or exactly 4 (``a8f7k2``)                    40
... or exactly 3                                 25
only hex digits, with 2+ letters, 2+ digits      40
and 3+ switches (``15dbc7f1``: a hash)
letter pairs no name of our users' languages     40
has, twice or more (``qw``, ``xk``, ``vz``;
:data:`RARE_PAIRS`) ... or once                  20
Shannon entropy of ``t`` >= 3.2 bits/char,       20
only for n >= 10 and when the other points
already reach 40 (a booster, not a signal)
==========================================  ======

The score is capped at 100; ``random_local`` is reported from :data:`THRESHOLD` (60) up.
Ordinary names score 0-40: ``p.schmidt`` 20, ``schwarzkopf`` 20, ``maria.fernandez`` 0.

Speed: 60 needs 5 switches, or one 40-point feature plus another feature or the entropy booster, so a part
with no run of 5 consonants, fewer than 3 letter/digit switches, no rare letter pair and two or
more vowels in its first 20 letters cannot reach it.

The rare pairs stay clear of the names of Spain, Portugal, France, Italy, Germany and Poland,
also where two names meet without a separator: a pair ending in a letter that starts surnames
(``diaz`` + ``vazquez`` gives ``zv``, ``felix`` + ``garcia`` gives ``xg``) and the ``jc`` of
Wójcik are left out. Measured in ``bench/email_roles_random.py``.

Only the parts that pass this cheap regex gate are scored in full; :func:`random_score_query`
leaves the others out (score 0).
"""

from __future__ import annotations

THRESHOLD = 60
MIN_LENGTH = 8
_CONSONANTS = "bcdfghjklmnpqrstvwxz"
#: letter pairs that (almost) no personal name of our users' languages holds, as a regex
RARE_PAIRS = "q[a-tv-z]|j[fgqvwxz]|v[fjkqwxz]|x[jkqxz]"


def cleaned_sql(local_sql: str) -> str:
    """SQL: the local part as scored (``t`` above, with ``.`` where separators were)."""
    return f"regexp_replace(strip_accents(lower(split_part({local_sql}, '+', 1))), '[^a-z0-9]+', '.', 'g')"


def random_score_query(source: str, key: str, local: str, *, gated: bool = True) -> str:
    """SQL query ``(key, random_score)`` over ``source`` whose column ``local`` holds local parts.

    Only the rows that pass the gate (see the module doc) come out; join with a LEFT JOIN and
    read a missing score as 0. Features are computed once per row in nested selects; the entropy
    (a list lambda) only runs for rows whose other points already reach 40.
    """
    c = f"[{_CONSONANTS}]"
    switches3 = "[a-z]+[0-9]+[a-z]+[0-9]|[0-9]+[a-z]+[0-9]+[a-z]"
    gate = (f"length(t) >= {MIN_LENGTH} AND (regexp_matches(r, '{c}{{5}}') OR regexp_matches(t, '{switches3}') "
            f"OR length(t) > 20 OR NOT regexp_matches(t, '[aeiouy][^aeiouy]*[aeiouy]') "
            f"OR regexp_matches(r, '{RARE_PAIRS}'))")
    features = f"""
        SELECT {key}, t, n,
               (CASE WHEN regexp_matches(r, '{c}{{6}}') THEN 40 WHEN regexp_matches(r, '{c}{{5}}') THEN 20 ELSE 0 END)
             + (CASE WHEN letters < 6 THEN 0 WHEN vowels < 0.1 * letters THEN 40
                     WHEN vowels < 0.2 * letters THEN 20 ELSE 0 END)
             + (CASE WHEN switches >= 5 THEN 60 WHEN switches = 4 THEN 40 WHEN switches = 3 THEN 25 ELSE 0 END)
             + (CASE WHEN switches >= 3 AND letters >= 2 AND n - letters >= 2 AND regexp_matches(t, '^[0-9a-f]+$')
                     THEN 40 ELSE 0 END)
             + (CASE WHEN rare >= 2 THEN 40 WHEN rare = 1 THEN 20 ELSE 0 END)
               AS base
        FROM (SELECT {key}, r, t, length(t) AS n,
                     length(regexp_extract_all(r, '{RARE_PAIRS}')) AS rare,
                     length(t) - length(translate(t, 'abcdefghijklmnopqrstuvwxyz', '')) AS letters,
                     length(t) - length(translate(t, 'aeiouy', '')) AS vowels,
                     CASE WHEN length(translate(t, '0123456789', '')) IN (0, length(t)) THEN 0
                          ELSE length(regexp_replace(t, '[a-z]+|[0-9]+', 'x', 'g')) - 1 END AS switches
              FROM (SELECT {key}, r, replace(r, '.', '') AS t
                    FROM (SELECT {key}, {cleaned_sql(local)} AS r FROM {source}))
              WHERE {gate if gated else "true"})"""
    cs = "string_split(t, '')"
    count = f"length(list_filter({cs}, lambda x: x = c))"
    entropy = f"list_sum(list_transform(list_distinct({cs}), lambda c: -({count} / n) * log2({count} / n)))"
    return f"""
        SELECT {key}, CASE WHEN n < {MIN_LENGTH} THEN 0
                           WHEN n >= 10 AND base >= 40 AND base < 100 AND {entropy} >= 3.2 THEN least(100, base + 20)
                           ELSE least(100, base) END AS random_score
        FROM ({features})"""
