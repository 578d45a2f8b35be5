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


def matched_values(ws: Workspace, keys: PersonKeys, registers: dict[str, str], types: set[str]) -> str:
    """Temp table ``(type, value, flag)``: the distinct identifiers of ``keys`` whose keyed token is in
    the register of ``flag``. Each distinct value of the types some register holds is hashed once, and
    only the few that match are kept (no table of every token is made)."""
    con = ws.con
    ws.hasher  # noqa: B018 - registers crm_token()
    name = f"__idk_hit_{next(_counter)}"
    keys.made.append(name)
    wanted = ", ".join(f"'{t}'" for t in sorted(types)) or "NULL"
    union = " UNION ALL ".join(f"SELECT type, token, '{flag}' AS flag FROM ({sql})" for flag, sql in registers.items())
    # no DISTINCT over the values first: in a customer table nearly every value is distinct, and
    # grouping millions of lines cost most of what hashing the few repeated values again costs
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {name} AS
        SELECT DISTINCT h.type, h.value, g.flag FROM (
            SELECT type, value, crm_token(value) AS token FROM {keys.name} WHERE type IN ({wanted})) h
        JOIN ({union}) g ON g.type = h.type AND g.token = h.token""")
    return name


def person_flags(ws: Workspace, keys: PersonKeys) -> str:
    """Temp table ``(pid, erased, suppressed, bounced)`` for every person of ``keys``."""
    con = ws.con
    registers = register_sql(ws)
    types: set[str] = set()
    for sql in registers.values():
        types |= {str(r[0]) for r in con.execute(f"SELECT DISTINCT type FROM ({sql})").fetchall()}
    name = f"__idk_flags_{next(_counter)}"
    keys.made.append(name)
    hits = matched_values(ws, keys, registers, types) if types else None
    cols = []
    joins = []
    for i, flag in enumerate(FLAGS):
        if flag in registers and hits:
            joins.append(
                f"LEFT JOIN (SELECT DISTINCT k.pid FROM {keys.name} k JOIN {hits} h "
                f"ON h.type = k.type AND h.value = k.value AND h.flag = '{flag}') f{i} ON f{i}.pid = p.pid"
            )
            cols.append(f"f{i}.pid IS NOT NULL AS {flag}")
        else:
            cols.append(f"false AS {flag}")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT p.pid, {', '.join(cols)} "
        f"FROM (SELECT DISTINCT pid FROM {keys.rows}) p {' '.join(joins)}"
    )
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
