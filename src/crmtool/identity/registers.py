"""Who must not be contacted, per person: erasures, suppressions and bounces matched through person keys.

The registers hold keyed tokens only (``crm_token`` of a canonical value, or of the plain
lower-case address for entries written before canonical forms existed: person keys carry both).
A match on any identifier of any record of a person flags the whole person (their dedupe
cluster), and :func:`person_flags` says so per ``pid``; :func:`person_consent` folds the consent of
a person's records into the most restrictive one (denied over unknown over granted).

Every reader of "must not mail" (``mailable``, segment exclusions, audiences, the pseudonymised
export) goes through here: nothing else compares identifiers.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from crmtool.identity.keys import IdentityColumns, PersonKeys

if TYPE_CHECKING:
    from crmtool.workspace import Workspace

SUPPRESSIONS, ERASURES, BOUNCES = "privacy_suppressions", "privacy_erasures", "email_bounces"
FLAGS = ("erased", "suppressed", "bounced")
_counter = itertools.count(1)


def register_sql(ws: Workspace) -> dict[str, str]:
    """SQL ``(type, token)`` of each register the workspace has (erased, suppressed, bounced)."""
    out: dict[str, str] = {}
    if ws.table_exists(ERASURES):
        out["erased"] = f"SELECT {_type_sql('identifier_type')} AS type, token FROM {ERASURES}"
    if ws.table_exists(SUPPRESSIONS):
        out["suppressed"] = f"SELECT {_type_sql('channel')} AS type, token FROM {SUPPRESSIONS}"
    if ws.table_exists(BOUNCES):
        out["bounced"] = f"SELECT 'email' AS type, token FROM {BOUNCES} WHERE bounce_type IN ('hard', 'complaint')"
    return out


def _type_sql(column: str) -> str:
    """Identifier type names as other writers spell them (``customer_id``, ``national_id``) -> ours."""
    return (f"CASE lower({column}) WHEN 'customer_id' THEN 'id' WHEN 'national_id' THEN 'nif' "
            f"WHEN 'dni' THEN 'nif' ELSE lower({column}) END")


def person_flags(ws: Workspace, keys: PersonKeys) -> str:
    """Temp table ``(pid, erased, suppressed, bounced)`` for every person of ``keys`` (dropped with them)."""
    return person_flags_of_lines(ws, f"SELECT rid, type, value FROM {keys.name}", keys.rows, keys.made)


def person_flags_of_lines(ws: Workspace, lines_sql: str, rows: str, made: list[str]) -> str:
    """:func:`person_flags` straight from the lines: temp table ``(pid, erased, suppressed, bounced)`` for
    every person of ``rows (rid, pid)``, whose lines are ``lines_sql (rid, type, value)`` (e.g.
    :func:`~crmtool.identity.keys.person_lines_sql`).

    A person is flagged when a line of any of their rows has its keyed token in the register. The
    lines need not be a table: each is hashed (and canonicalised, when ``lines_sql`` computes the
    canonical forms) and joined with the registers as it streams, and only the persons of the rows
    that match are kept; so ``mailable`` makes no table of every line with its person. Each line's
    value is hashed once, without a DISTINCT first: in a customer table nearly every value is
    distinct, and grouping millions of lines cost most of what hashing the few repeated values
    again costs. Temp tables made are appended to ``made``."""
    con = ws.con
    registers = register_sql(ws)
    types: set[str] = set()
    for sql in registers.values():
        types |= {str(r[0]) for r in con.execute(f"SELECT DISTINCT type FROM ({sql})").fetchall()}
    name = f"__idk_flags_{next(_counter)}"
    made.append(name)
    present = [flag for flag in FLAGS if flag in registers and types]
    if present:
        ws.hasher  # noqa: B018 - registers crm_token()
        hits = f"{name}_hits"
        made.append(hits)
        wanted = ", ".join(f"'{t}'" for t in sorted(types))
        union = " UNION ALL ".join(f"SELECT type, token, '{flag}' AS flag FROM ({sql})"
                                   for flag, sql in registers.items())
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {hits} AS
            SELECT DISTINCT r.pid, g.flag FROM (
                SELECT rid, type, crm_token(value) AS token FROM ({lines_sql}) WHERE type IN ({wanted})) h
            JOIN ({union}) g ON g.type = h.type AND g.token = h.token
            JOIN {rows} r ON r.rid = h.rid""")
        picks = ", ".join(f"bool_or(flag = '{flag}') AS {flag}" for flag in present)
        cols = [f"coalesce(f.{flag}, false) AS {flag}" if flag in present else f"false AS {flag}" for flag in FLAGS]
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {name} AS SELECT p.pid, {', '.join(cols)}
            FROM (SELECT DISTINCT pid FROM {rows}) p
            LEFT JOIN (SELECT pid, {picks} FROM {hits} GROUP BY pid) f ON f.pid = p.pid""")
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT DISTINCT pid, "
                    f"{', '.join(f'false AS {flag}' for flag in FLAGS)} FROM {rows}")
    return name


def person_consent_sql(state_by_row: str) -> str:
    """SQL ``(pid, consent)`` from ``state_by_row (pid, cs)``: the most restrictive state of a person."""
    return (
        "SELECT pid, CASE WHEN bool_or(cs = 'denied') THEN 'denied' "
        "WHEN bool_and(cs = 'granted') THEN 'granted' ELSE 'unknown' END AS consent "
        f"FROM ({state_by_row}) GROUP BY pid"
    )


def drop_flagged(ws: Workspace, table: str, cols: IdentityColumns, region: str = "ES") -> int:
    """Delete from ``table`` every row of a person who is erased, suppressed or hard-bounced now;
    returns how many. For files written earlier (send lists) read back before they are shared."""
    from crmtool.identity.keys import person_keys

    if not register_sql(ws) or cols.empty:
        return 0
    con = ws.con
    keys = person_keys(con, table, cols, region=region)
    try:
        flags = person_flags(ws, keys)
        gone = keys.rows_of(f"SELECT pid FROM {flags} WHERE erased OR suppressed OR bounced")
        n = int(con.execute(f"SELECT count(*) FROM ({gone})").fetchall()[0][0])
        if n:
            con.execute(f'DELETE FROM "{table}" WHERE rowid IN ({gone})')
        return n
    finally:
        keys.drop()
