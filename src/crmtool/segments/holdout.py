"""Deterministic, stable holdout buckets, identical in Python and in DuckDB SQL.

``bucket(id) = int(first 16 hex digits of SHA-256(salt + ":" + normalised id)) mod 10000``, where
the normalised customer id is the id as text with surrounding white space trimmed (the same
normalisation the privacy tokens use). A customer is in a holdout of ``p`` percent when its bucket
is below ``round(p * 100)``. So:

- the same customer stays in (or out) on every run, whatever else changes in the data;
- with the same salt a smaller holdout is always inside a larger one (5% inside 10%);
- another salt draws an independent group (use one per experiment you want independent).

SHA-256 is used (not DuckDB's ``hash()``, which is not specified and may change between
versions) because both Python's :mod:`hashlib` and DuckDB's ``sha256()`` compute it the same way.
"""

from __future__ import annotations

import hashlib

from crmtool.sqltext import sql_str

BUCKETS = 10_000
ID_SPACE = " \t\r\n"  # what is trimmed from both ends of a customer id (Python and SQL alike)


def normalise_id(customer_id: str | int) -> str:
    return str(customer_id).strip(ID_SPACE)


def id_sql(expr: str) -> str:
    """SQL of :func:`normalise_id` (DuckDB's one-argument trim() removes spaces only)."""
    return f"trim(CAST({expr} AS VARCHAR), ' ' || chr(9) || chr(13) || chr(10))"


def bucket(customer_id: str | int, salt: str) -> int:
    """The bucket (0..9999) of one customer id under ``salt``."""
    digest = hashlib.sha256(f"{salt}:{normalise_id(customer_id)}".encode()).hexdigest()
    return int(digest[:16], 16) % BUCKETS


def in_holdout(customer_id: str | int, salt: str, percent: float) -> bool:
    return bucket(customer_id, salt) < round(percent * 100)


def bucket_sql(expr: str, salt: str) -> str:
    """SQL computing :func:`bucket` for an id expression (already trimmed text or any type)."""
    salt_lit = sql_str(salt + ":")
    return (
        f"(('0x' || substr(sha256({salt_lit} || {id_sql(expr)}), 1, 16))::UBIGINT "
        f"% {BUCKETS})"
    )


def bucket_sql_portable(expr: str, salt: str) -> str:
    """:func:`bucket_sql` for engines without DuckDB's hex cast to UBIGINT (Spark): the same SHA-256,
    its first 16 hex digits read by ``conv`` as an unsigned number, so both engines agree."""
    salt_lit = sql_str(salt + ":")
    return (f"(CAST(conv(substr(sha256({salt_lit} || {id_sql(expr)}), 1, 16), 16, 10) AS DECIMAL(20,0)) "
            f"% {BUCKETS})")
