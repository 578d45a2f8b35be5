"""Loads that never let erased people in: drop them before anything is persisted.

:func:`drop_erased` removes from a table the rows of people whose identifiers are in the erasure
register (``privacy_erasures``, keyed tokens) or that a retention rule deleted
(``privacy_retained``), matched through person keys: any identifier of any row of a person
removes every row of that person; people a retention rule anonymised (``privacy_anonymised``)
get the same columns blanked again. :func:`load_without_erased` loads an
export into an in-memory database attached to the workspace connection, drops erased people
there, and only then writes the table into the workspace, so the workspace file (and its
write-ahead log) never holds their bytes again. Every command that loads an export uses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    from crmtool.identity.keys import PersonKeys
    from crmtool.io.readers import LoadResult, ReadOptions
    from crmtool.workspace import Workspace

LOAD_DB = "crm_load"




def _on_record(ws: Workspace) -> tuple[str, str | None] | None:
    """What a load must apply, or None when nothing is on record (nobody erased, deleted or
    anonymised): a query of the tokens of erased people and of people a retention rule deleted
    (their ids and NIFs), and the register of people a retention rule anonymised (or None)."""
    con = ws.con
    registers = [f"SELECT identifier_type AS type, token FROM {t}" for t in ("privacy_erasures", "privacy_retained")
                 if ws.table_exists(t)]
    register = " UNION ALL ".join(registers) or "SELECT NULL AS type, NULL AS token WHERE false"
    anonymised = "privacy_anonymised" if ws.table_exists("privacy_anonymised") else None
    if not con.execute(f"SELECT count(*) FROM ({register})").fetchall()[0][0] and not (
            anonymised and con.execute(f"SELECT count(*) FROM {anonymised}").fetchall()[0][0]):
        return None
    return register, anonymised


def drop_erased(
    ws: Workspace,
    table: str,
    key_column: str | None = None,
    email_column: str | None = None,
    phone_column: str | None = None,
    *,
    detect: bool = True,
) -> int:
    """Delete from ``table`` the rows of people erased earlier (matched by keyed tokens); returns how many.

    Columns left as ``None`` are detected by name (``detect=False``: only the columns given). A
    match on any identifier of a row removes every row of that person (same id or cluster).
    Costs nothing when nobody was ever erased.
    """
    from crmtool.identity.keys import IdentityColumns, detect_identity_columns, person_keys

    con = ws.con
    on_record = _on_record(ws)
    if on_record is None:
        return 0
    register, anonymised = on_record
    ws.hasher  # noqa: B018 - registers crm_token()
    cols = detect_identity_columns(con, table, key_column) if detect else IdentityColumns(key_column)
    if email_column:
        cols.emails = [email_column, *[c for c in cols.emails if c != email_column]]
    if phone_column:
        cols.phones = [phone_column, *[c for c in cols.phones if c != phone_column]]
    both = register + (f" UNION ALL SELECT identifier_type, token FROM {anonymised}" if anonymised else "")
    kinds = [str(r[0]) for r in con.execute(f"SELECT DISTINCT type FROM ({both})").fetchall()]
    # only the kinds of identifier a register holds are derived (an email or phone costs the most)
    cols.emails = cols.emails if "email" in kinds else []
    cols.phones = cols.phones if "phone" in kinds else []
    cols.nifs = cols.nifs if "nif" in kinds else []
    if cols.empty:
        return 0
    keys = person_keys(con, table, cols)
    try:
        wanted = ", ".join(sql_str(k) for k in kinds)  # only the kinds a register holds are hashed
        con.execute(f"""CREATE OR REPLACE TEMP TABLE __erased_hashed AS SELECT type, value, crm_token(value) AS token
            FROM (SELECT DISTINCT type, value FROM {keys.name} WHERE type IN ({wanted}))""")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE __erased_pids AS SELECT DISTINCT k.pid FROM __erased_hashed h
            JOIN {keys.name} k ON k.type = h.type AND k.value = h.value
            WHERE (h.type, h.token) IN (SELECT (type, token) FROM ({register}))""")
        gone = keys.rows_of("SELECT pid FROM __erased_pids")
        n = int(con.execute(f"SELECT count(*) FROM ({gone})").fetchall()[0][0])
        if n:
            con.execute(f"DELETE FROM {ident(table)} WHERE rowid IN ({gone})")
        if anonymised:
            _blank_anonymised(ws, table, keys, anonymised)
        return n
    finally:
        keys.drop()
        for t in ("__erased_pids", "__erased_hashed", "__anonymised_pids"):
            con.execute(f"DROP TABLE IF EXISTS {t}")


def _blank_anonymised(ws: Workspace, table: str, keys: PersonKeys, register: str) -> None:
    """Blank, in every row of a person a retention rule anonymised, the columns it blanked
    (``__erased_hashed`` holds the table's identifiers with their tokens)."""
    con = ws.con
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __anonymised_pids AS SELECT DISTINCT k.pid, unnest(a.columns) AS col
        FROM __erased_hashed h JOIN {register} a ON a.identifier_type = h.type AND a.token = h.token
        JOIN {keys.name} k ON k.type = h.type AND k.value = h.value""")
    have = {str(r[0]) for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main'",
        [table]).fetchall()}
    for (col,) in con.execute("SELECT DISTINCT col FROM __anonymised_pids ORDER BY 1").fetchall():
        if col in have and col != "_row":  # one statement per distinct column, never per row
            pids = f"SELECT pid FROM __anonymised_pids WHERE col = {sql_str(str(col))}"
            con.execute(f"UPDATE {ident(table)} SET {ident(str(col))} = NULL WHERE rowid IN ({keys.rows_of(pids)})")


def load_without_erased(
    ws: Workspace,
    path: Path,
    table: str,
    key: str | None = None,
    email_column: str | None = None,
    phone_column: str | None = None,
    *,
    temp: bool = False,
    read: ReadOptions | None = None,
) -> LoadResult:
    """Load ``path`` as ``table`` with erased people already gone: read into an in-memory database
    attached to the workspace connection, drop them there, then copy the rest into the workspace.
    ``result.erased_dropped`` says how many rows were dropped; ``temp``: a temporary table (memory);
    ``read`` overrides the detected delimiter, encoding or xlsx sheet."""
    from crmtool.io.readers import load_file

    con = ws.con
    if not temp and _on_record(ws) is None:
        # nobody erased, deleted or anonymised: nothing to apply, so the export goes straight into
        # the workspace table (the detour through memory costs two copies and a sort)
        return load_file(con, path, table, read)
    main = str(con.execute("SELECT current_database()").fetchall()[0][0])
    con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {LOAD_DB}")
    try:
        con.execute(f"USE {LOAD_DB}")
        try:
            loaded = load_file(con, path, table, read)
        finally:
            con.execute(f"USE {ident(main)}")
        incoming = f"__incoming_{abs(hash(table)) % 10**8}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {incoming} AS SELECT * FROM {LOAD_DB}.main.{ident(table)}")
        con.execute(f"DROP TABLE {LOAD_DB}.main.{ident(table)}")
        try:
            loaded.erased_dropped = drop_erased(ws, incoming, key, email_column, phone_column)
            kind = "TEMP TABLE" if temp else "TABLE"
            con.execute(f"CREATE OR REPLACE {kind} {ident(table)} AS SELECT * FROM {incoming} ORDER BY _row")
        finally:
            con.execute(f"DROP TABLE IF EXISTS {incoming}")
    finally:
        con.execute(f"DETACH DATABASE IF EXISTS {LOAD_DB}")
    loaded.table = table
    return loaded
