"""Erasure (right to be forgotten): remove people everywhere, keep only keyed proof, never let them back.

``erase(ws, requests)`` reads a request file (customer ids, emails and/or phones, an optional
request reference and date), finds every matching row in every workspace table that holds
customer rows in clear (``data_*``, ``work_*``, ``clean_*``, dedupe and segment tables ...),
widens the match to the same customer id and to duplicates in dedupe clusters when such tables
exist, deletes the rows, rewrites the outputs of the latest ``clean`` runs without them, and
records only keyed tokens: in ``privacy_erasures``, as ``erasure`` suppressions, and in the audit
log with the date and the request reference. ``check_erasures`` proves from those tokens that
each request was carried out. :func:`drop_erased` removes erased people from a freshly loaded
table (``clean`` calls it right after loading).

Request files, and output files being rewritten, are read in a private in-memory DuckDB so their
clear values never reach the workspace file. DuckDB deletes rows logically, so after an erasure
``crmtool erase`` also rewrites the workspace file (:func:`compact_workspace_file`): erased values
are then gone from its bytes too. ``data_X`` gets the full normalising match; its ``work_X`` and
``clean_X`` copies are matched by equality on their already normalised values and by ``_row``
where the customer id agrees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.errors import InputError
from crmtool.kinds.base import ident, sql_str
from crmtool.privacy.consent import date_sql
from crmtool.privacy.identity import (
    EMAIL,
    ID,
    PHONE,
    IdentityColumns,
    customer_tables,
    drop_maps,
    email_norm,
    email_norm_parts,
    ensure_tables,
    id_sql,
    load_side,
    phone_key_sql,
    phone_norm_map,
    table_columns,
    to_temp_table,
)
from crmtool.privacy.suppress import classify_columns, identifier_rows_sql, normalised_identifiers

if TYPE_CHECKING:
    import duckdb

    from crmtool.io.readers import LoadResult
    from crmtool.workspace import Workspace

REF_NAMES = (
    "request_ref",
    "ref",
    "reference",
    "referencia",
    "request",
    "request_id",
    "ticket",
    "solicitud",
    "expediente",
)
STAGING = "__privacy_requests"
TARGETS = "__erase_targets"
HITS = "__erase_hits"
TOKEN_PREFIX = "k:"


# --------------------------------------------------------------------------- matching in clear
def keys_table(con: duckdb.DuckDBPyConnection, table: str, cols: IdentityColumns, targets: str | None = None) -> str:
    """A temp table of the normalised identifiers of ``table`` (one scan), reused by every step.

    Columns: ``rid`` (rowid), ``id``, ``em0..`` (normalised emails), ``pk0..`` (phone keys) and
    ``ph0..`` (raw phones, normalised exactly only for the few rows whose key matches). With
    ``targets``, only rows that may match them are kept (same id, same plain email, an odd email
    spelling, or the same phone key): the table stays small and nothing is missed.
    """
    name = f"__erase_keys_{abs(hash(table)) % 10**8}"
    idv = id_sql(f"t.{ident(cols.id)}") if cols.id else "CAST(NULL AS VARCHAR)"
    parts = ["t.rowid AS rid", f"{idv} AS id"]
    joins = []
    may_match = [f"{idv} IN (SELECT norm FROM {targets} WHERE type = '{ID}')"] if cols.id and targets else []
    for k, col in enumerate(cols.emails):
        expr, join, odd_alias = email_norm_parts(con, table, col, "t")
        parts.append(f"nullif({expr}, '') AS em{k}")
        joins.append(join)
        if targets:
            odd = f" OR {odd_alias}.raw IS NOT NULL" if odd_alias else ""
            may_match.append(
                f"lower(trim(CAST(t.{ident(col)} AS VARCHAR))) IN (SELECT norm FROM {targets} WHERE type = '{EMAIL}')"
                + odd
            )
    for j, col in enumerate(cols.phones):
        pk = phone_key_sql(f"t.{ident(col)}")
        parts.append(f"{pk} AS pk{j}")
        parts.append(f"CAST(t.{ident(col)} AS VARCHAR) AS ph{j}")
        if targets:
            may_match.append(f"{pk} IN (SELECT pkey FROM {targets} WHERE type = '{PHONE}')")
    where = f"WHERE {' OR '.join(f'({c})' for c in may_match)}" if targets else ""
    if targets and not may_match:
        where = "WHERE false"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {', '.join(parts)} FROM {ident(table)} t "
        f"{' '.join(joins)} {where}"
    )
    _keys_tables.append(name)
    return name


_keys_tables: list[str] = []


def _match_clear(
    con: duckdb.DuckDBPyConnection,
    table: str,
    cols: IdentityColumns,
    targets: str,
    hits: str,
    id_only: bool = False,
    keys: str | None = None,
    prefilter: bool = False,
) -> str:
    """Insert into ``hits (tbl, rid, ref, id)`` the rows of ``table`` matching ``targets``; returns the keys table.

    ``targets`` holds ``(type, norm, pkey, ref)`` in clear (from a request file).
    """
    from crmtool.db import fetch_arrow

    if id_only:  # straight on the table: rows of the same customer need not be in the keys table
        idv = id_sql(f"t.{ident(cols.id)}") if cols.id else "NULL"
        if cols.id:
            con.execute(
                f"INSERT INTO {hits} SELECT DISTINCT {sql_str(table)}, t.rowid, r.ref, {idv} "
                f"FROM {ident(table)} t JOIN {targets} r ON r.type = '{ID}' AND {idv} = r.norm"
            )
        return keys or ""
    k = keys or keys_table(con, table, cols, targets if prefilter else None)
    head = f"INSERT INTO {hits} SELECT DISTINCT {sql_str(table)}, k.rid, r.ref, k.id"
    if cols.id:
        con.execute(f"{head} FROM {k} k JOIN {targets} r ON r.type = '{ID}' AND k.id = r.norm")
    for e in range(len(cols.emails)):
        con.execute(f"{head} FROM {k} k JOIN {targets} r ON r.type = '{EMAIL}' AND k.em{e} = r.norm")
    for j in range(len(cols.phones)):
        cand = (
            fetch_arrow(
                con, f"SELECT DISTINCT k.ph{j} FROM {k} k JOIN {targets} r ON r.type = '{PHONE}' AND k.pk{j} = r.pkey"
            )
            .column(0)
            .to_pylist()
        )
        if not cand:
            continue
        pm = phone_norm_map(con, cand)
        con.execute(
            f"{head} FROM {k} k JOIN {pm} m ON m.raw = k.ph{j} "
            f"JOIN {targets} r ON r.type = '{PHONE}' AND r.norm = m.norm"
        )
    return k


FAMILY_PREFIXES = ("data_", "work_", "clean_")


def _derived_tables(con: duckdb.DuckDBPyConnection, tables: dict[str, IdentityColumns]) -> dict[str, str]:
    """``work_X``/``clean_X`` -> ``data_X`` when all have ``_row``: copies of the loaded rows whose
    identifiers are the loaded ones, normalised. They are matched by plain equality on their
    (already normalised) values and by ``_row`` with the rows matched in ``data_X``; only ``data_X``
    gets the full normalising match. Saves two full scans per dataset."""
    out: dict[str, str] = {}
    for table in tables:
        for prefix in ("work_", "clean_"):
            if not table.startswith(prefix):
                continue
            base = "data_" + table[len(prefix) :]
            if (
                base in tables
                and tables[base].id
                and tables[table].id
                and all("_row" in {c for c, _t in table_columns(con, t)} for t in (base, table))
            ):
                out[table] = base
    return out


def _match_light(
    con: duckdb.DuckDBPyConnection,
    table: str,
    cols: IdentityColumns,
    targets: str,
    hits: str,
    id_only: bool = False,
    skip_id: bool = False,
) -> None:
    """Equality match on values a rule already normalised (trimmed id, lower-case email, E.164 phone)."""
    idv = id_sql(f"t.{ident(cols.id)}") if cols.id else "CAST(NULL AS VARCHAR)"
    head = f"INSERT INTO {hits} SELECT DISTINCT {sql_str(table)}, t.rowid, r.ref, {idv} FROM {ident(table)} t"
    if cols.id and not skip_id:
        con.execute(f"{head} JOIN {targets} r ON r.type = '{ID}' AND {idv} = r.norm")
    if id_only:
        return
    for kind, names in ((EMAIL, cols.emails), (PHONE, cols.phones)):
        for col in names:
            con.execute(f"{head} JOIN {targets} r ON r.type = '{kind}' AND CAST(t.{ident(col)} AS VARCHAR) = r.norm")


def _propagate_by_row(
    con: duckdb.DuckDBPyConnection, derived: dict[str, str], tables: dict[str, IdentityColumns]
) -> None:
    """Within each dataset (data_X and its derived tables), a row matched in one is matched in all
    the others that hold the same ``_row`` *and* the same customer id (a table left from an earlier
    load of another file shares row numbers, not people)."""
    families: dict[str, list[str]] = {}
    for table, base in derived.items():
        families.setdefault(base, [base]).append(table)
    for members in families.values():
        rows = (
            "("
            + " UNION ".join(
                f"SELECT DISTINCT m._row, h.ref, h.id FROM {HITS} h JOIN {ident(t)} m "
                f"ON h.tbl = {sql_str(t)} AND h.rid = m.rowid"
                for t in members
            )
            + ")"
        )
        con.execute(f"CREATE OR REPLACE TEMP TABLE __erase_family_rows AS SELECT DISTINCT * FROM {rows}")
        for t in members:
            con.execute(
                f"INSERT INTO {HITS} SELECT DISTINCT {sql_str(t)}, m.rowid, f.ref, f.id "
                f"FROM {ident(t)} m JOIN __erase_family_rows f ON m._row = f._row "
                f"AND {id_sql('m.' + ident(tables[t].id or ''))} = f.id"
            )
        con.execute("DROP TABLE __erase_family_rows")


def _new_hits(con: Any) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {HITS} (tbl VARCHAR, rid BIGINT, ref VARCHAR, id VARCHAR)")


def _dedupe_expand(ws: Workspace, ids_table: str) -> int:
    """Add to ``ids_table (id, ref)`` the ids that share a dedupe cluster with one already there."""
    con = ws.con
    added = 0
    tables = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_name LIKE 'dedupe%' ORDER BY table_name"
        ).fetchall()
    ]
    for table in tables:
        names = [c for c, _t in table_columns(con, table)]
        cluster = next((c for c in names if "cluster" in c.lower()), None)
        from crmtool.privacy.identity import detect_identity_columns

        id_col = detect_identity_columns(con, table).id
        if not cluster or not id_col or cluster == id_col:
            continue
        t, cl, ic = ident(table), ident(cluster), ident(id_col)
        before = int(con.execute(f"SELECT count(*) FROM {ids_table}").fetchall()[0][0])
        con.execute(f"""INSERT INTO {ids_table}
            SELECT DISTINCT {id_sql("d2." + ic)}, e.ref
            FROM {t} d1 JOIN {ids_table} e ON {id_sql("d1." + ic)} = e.id
            JOIN {t} d2 ON d1.{cl} = d2.{cl}
            WHERE {id_sql("d2." + ic)} IS NOT NULL
              AND ({id_sql("d2." + ic)}, e.ref) NOT IN (SELECT (id, ref) FROM {ids_table})""")
        added += int(con.execute(f"SELECT count(*) FROM {ids_table}").fetchall()[0][0]) - before
    return added


# --------------------------------------------------------------------------- reading requests
def _load_requests(ws: Workspace, path: Path) -> int:
    """Load a request file into the temp table ``__erase_req``.

    Columns: type, raw, ref, requested_at, norm, token, pkey. The file is read in a private
    in-memory database, so its clear values never reach the workspace file.
    """
    con = ws.con
    side, loaded = load_side(path, STAGING)
    try:
        found = classify_columns(side, STAGING, path, ref_names=REF_NAMES)
        ref = (
            f"coalesce(nullif(trim(CAST({ident(found.ref_column)} AS VARCHAR)), ''), 'row-' || _row)"
            if found.ref_column
            else "'row-' || _row"
        )
        when = f"CAST({date_sql(ident(found.date_column))} AS TIMESTAMP)" if found.date_column else "NULL"
        to_temp_table(side, identifier_rows_sql(found, f", {ref} AS ref, {when} AS requested_at"), con, "__erase_raw")
    finally:
        side.close()
    try:
        normalised_identifiers(ws, "__erase_raw", "__erase_req")
    finally:
        con.execute("DROP TABLE IF EXISTS __erase_raw")
    return loaded.rows


def _targets_from(con: Any, source: str) -> None:
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {TARGETS} AS SELECT DISTINCT type, norm, "
        f"CASE WHEN type = '{PHONE}' THEN {phone_key_sql('norm')} END AS pkey, ref FROM {source} "
        f"WHERE norm IS NOT NULL"
    )


def _cleanup(con: Any) -> None:
    while _keys_tables:
        con.execute(f"DROP TABLE IF EXISTS {_keys_tables.pop()}")
    for t in (
        "__erase_req",
        TARGETS,
        HITS,
        "__erase_ids",
        "__erase_tokens",
        "__erase_linked_raw",
        "__erase_linked",
        "__privacy_scrub",
    ):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    drop_maps(con)


# --------------------------------------------------------------------------- outputs
OUTPUT_COMMANDS = ("clean", "erase", "retention")


def latest_clean_outputs(ws: Workspace) -> list[Path]:
    """Output files of earlier runs (``clean``, and the new versions ``erase``/``retention`` wrote)
    that are still exactly as crmtool wrote them.

    The run history records each output with its SHA-256. A path is used only when the file there
    now has the hash of its latest record: a relative path read from another working folder, or a
    file someone replaced since, is never touched.
    """
    from crmtool.io.readers import file_sha256

    marks = ", ".join(f"'{c}'" for c in OUTPUT_COMMANDS)
    rows = ws.con.execute(
        f"SELECT summary FROM crm_runs WHERE command IN ({marks}) AND summary IS NOT NULL ORDER BY started_at"
    ).fetchall()
    latest: dict[Path, str] = {}
    for (summary,) in rows:
        try:
            for out in json.loads(summary).get("outputs", []):
                if out.get("sha256"):
                    latest[Path(out["path"]).resolve()] = str(out["sha256"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return [p for p, sha in sorted(latest.items()) if p.is_file() and file_sha256(p) == sha]


def _load_output(path: Path, table: str) -> tuple[duckdb.DuckDBPyConnection, LoadResult]:
    """Read an output file back: plain UTF-8 CSV straight through DuckDB (fast), else via the readers."""
    import csv
    import io

    import duckdb

    from crmtool.io.readers import ROW_COLUMN, LoadResult, detect_delimiter, file_format

    if file_format(path) == "csv":
        with path.open("rb") as fh:
            head = fh.read(1 << 16)
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = head[: exc.start].decode("utf-8") if exc.start > len(head) - 4 else ""
        if text and not text.startswith("\ufeff"):
            delimiter = detect_delimiter(text)
            header = next(csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"'), [])
            if header and len(set(header)) == len(header) and ROW_COLUMN not in header and all(header):
                side = duckdb.connect()
                spec = "{" + ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c in header) + "}"
                try:
                    side.execute(
                        f"CREATE TABLE {table} AS SELECT * FROM read_csv("
                        f"{sql_str(str(path))}, header=true, auto_detect=false, delim={sql_str(delimiter)}, "
                        f"quote='\"', escape='\"', columns={spec}, strict_mode=true, max_line_size=10000000)"
                    )
                    rows = int(side.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
                    return side, LoadResult(table, path, "csv", rows, list(header), "utf-8", delimiter)
                except duckdb.Error:
                    side.close()
    return load_side(path, table)


def _scrub_file(ws: Workspace, path: Path, key: str | None) -> int:
    """Rewrite ``path`` without the rows matching the current targets; returns rows removed.

    The file is read in a private in-memory database (its clear values never reach the workspace
    file) and rewritten as it was read: same format, delimiter and encoding, cells unchanged.
    """
    from crmtool.io.writers import write_query
    from crmtool.privacy.identity import detect_identity_columns

    table = "__privacy_scrub"
    try:
        side, loaded = _load_output(path, table)
    except InputError:
        return 0
    try:
        to_temp_table(ws.con, f"SELECT * FROM {TARGETS}", side, TARGETS)
        cols = detect_identity_columns(side, table, key)
        _new_hits(side)
        _match_clear(side, table, cols, TARGETS, HITS, prefilter=True)
        if "_raw" in loaded.columns:  # raw lines of unparseable rows in a rejects file
            side.execute(f"""INSERT INTO {HITS} SELECT DISTINCT '{table}', s.rowid, r.ref, NULL FROM {table} s
                JOIN {TARGETS} r ON s._raw IS NOT NULL AND (
                    (r.type <> '{PHONE}' AND contains(lower(s._raw), lower(r.norm)))
                    OR (r.type = '{PHONE}'
                        AND contains(regexp_replace(s._raw, '[^0-9]', '', 'g'), r.pkey)))""")
        removed = int(side.execute(f"SELECT count(DISTINCT rid) FROM {HITS}").fetchall()[0][0])
        if removed:
            cols_sql = ", ".join(ident(c) for c in loaded.columns)
            fmt = "parquet" if loaded.format == "parquet" else "csv"
            encoding = "utf-8" if (loaded.encoding or "utf-8") in ("utf-8", "utf-8-sig") else str(loaded.encoding)
            write_query(
                side,
                f"SELECT {cols_sql} FROM {table} WHERE rowid NOT IN (SELECT rid FROM {HITS})",
                path,
                fmt,
                encoding=encoding,
                delimiter=loaded.delimiter or ",",
                neutralise_formulas=False,
            )
        return removed
    finally:
        side.close()


# --------------------------------------------------------------------------- erase
@dataclass
class EraseResult:
    run_id: str
    requests: int  # rows in the request file
    identifiers: int  # distinct identifiers requested
    found: int  # requested identifiers that matched at least one row
    not_found_refs: list[str]
    rows_removed: dict[str, int]
    linked_identifiers: int
    outputs: dict[str, int] = field(default_factory=dict)  # rewritten file -> rows removed
    audit_path: str = ""
    audit_head: str = ""
    manifest_path: str = ""
    key_fingerprint: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "requests": self.requests,
            "identifiers": self.identifiers,
            "found": self.found,
            "not_found": len(self.not_found_refs),
            "not_found_refs": self.not_found_refs,
            "rows_removed": self.rows_removed,
            "rows_removed_total": sum(self.rows_removed.values()),
            "linked_identifiers": self.linked_identifiers,
            "outputs_rewritten": self.outputs,
            "audit": self.audit_path,
            "audit_head": self.audit_head,
            "manifest": self.manifest_path,
            "key_fingerprint": self.key_fingerprint,
        }


def erase(
    ws: Workspace,
    requests: Path,
    *,
    out_dir: Path = Path("out"),
    audit_log: Path | None = None,
    key: str | None = None,
    outputs: list[Path] | None = None,
) -> EraseResult:
    """Carry out the erasure requests of ``requests`` on the workspace and on the latest clean outputs."""
    from crmtool.audit import AuditWriter, log_dir
    from crmtool.manifest import file_entry, write_manifest

    hasher = ws.hasher  # an unreadable key stops us before anything is changed
    con = ws.con
    ensure_tables(con)
    run = ws.start_run("erase")
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        with run.timed("load"):
            n_rows = _load_requests(ws, requests)
            _targets_from(con, "__erase_req")
        tables = customer_tables(con, key)
        with run.timed("match"):
            _new_hits(con)
            derived = _derived_tables(con, tables)
            keys: dict[str, str] = {}
            for table, cols in tables.items():
                if table in derived:  # ids are matched once, in the same-customer pass below
                    _match_light(con, table, cols, TARGETS, HITS, skip_id=True)
                else:
                    keys[table] = _match_clear(con, table, cols, TARGETS, HITS)
            # widen: the same customer id everywhere, and duplicates found by dedupe
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE __erase_ids AS SELECT DISTINCT norm AS id, ref FROM {TARGETS} "
                f"WHERE type = '{ID}' UNION SELECT DISTINCT id, ref FROM {HITS} WHERE id IS NOT NULL"
            )
            _dedupe_expand(ws, "__erase_ids")
            con.execute(
                f"INSERT INTO {TARGETS} SELECT DISTINCT '{ID}', id, NULL, ref FROM __erase_ids "
                f"WHERE (id, ref) NOT IN (SELECT (norm, ref) FROM {TARGETS} WHERE type = '{ID}')"
            )
            for table, cols in tables.items():
                if cols.id and table in derived:
                    _match_light(con, table, cols, TARGETS, HITS, id_only=True)
                elif cols.id:
                    _match_clear(con, table, cols, TARGETS, HITS, id_only=True, keys=keys[table])
            _propagate_by_row(con, derived, tables)
            linked = _linked_identifiers(ws, {t: c for t, c in tables.items() if t in keys}, keys)
        with run.timed("record"):
            con.execute(f"""CREATE OR REPLACE TEMP TABLE __erase_tokens AS
                SELECT type, norm, crm_token(norm) AS token, ref, requested_at, false AS linked FROM (
                    SELECT DISTINCT type, norm, ref, requested_at FROM __erase_req WHERE norm IS NOT NULL)
                UNION ALL
                SELECT type, norm, crm_token(norm), ref, NULL, true FROM (
                    SELECT DISTINCT l.type, l.norm, l.ref FROM {linked} l
                    WHERE (l.type, l.norm) NOT IN
                        (SELECT (type, norm) FROM __erase_req WHERE norm IS NOT NULL))""")
            con.execute(
                """INSERT INTO privacy_erasures
                SELECT DISTINCT token, type, ref, requested_at, ?, ? FROM __erase_tokens e
                WHERE NOT EXISTS (SELECT 1 FROM privacy_erasures p
                                  WHERE p.token = e.token AND p.request_ref = e.ref)
                ORDER BY 1, 3""",
                [now, run.run_id],
            )
            con.execute(
                f"""INSERT INTO privacy_match_keys
                SELECT DISTINCT crm_token({phone_key_sql("norm")}), 'phone', ? FROM __erase_tokens
                WHERE type = '{PHONE}' AND {phone_key_sql("norm")} IS NOT NULL
                  AND crm_token({phone_key_sql("norm")}) NOT IN (SELECT key_token FROM privacy_match_keys)""",
                [now],
            )
            con.execute(
                """INSERT INTO privacy_suppressions
                SELECT DISTINCT type, token, 'erasure', 'erase ' || ?, ? FROM __erase_tokens e
                WHERE NOT EXISTS (SELECT 1 FROM privacy_suppressions p
                                  WHERE p.channel = e.type AND p.token = e.token
                                  AND p.kind = 'erasure')""",
                [run.run_id, now],
            )
        with run.timed("delete"):
            removed: dict[str, int] = {}
            for table in tables:
                n = int(con.execute(f"SELECT count(DISTINCT rid) FROM {HITS} WHERE tbl = ?", [table]).fetchall()[0][0])
                if n:
                    con.execute(
                        f"DELETE FROM {ident(table)} WHERE rowid IN (SELECT rid FROM {HITS} WHERE tbl = ?)",
                        [table],
                    )
                removed[table] = n
            if ws.table_exists("email_bounces") and "token" in [c for c, _t in table_columns(con, "email_bounces")]:
                n = int(
                    con.execute(
                        f"SELECT count(*) FROM email_bounces WHERE token IN "
                        f"(SELECT token FROM __erase_tokens "
                        f"WHERE type = '{EMAIL}')"
                    ).fetchall()[0][0]
                )
                if n:
                    con.execute(
                        f"DELETE FROM email_bounces WHERE token IN "
                        f"(SELECT token FROM __erase_tokens WHERE type = '{EMAIL}')"
                    )
                removed["email_bounces"] = n
        per_request = con.execute(f"""
            SELECT e.type, e.token, e.ref, e.requested_at,
                   (SELECT count(DISTINCT (h.tbl, h.rid)) FROM {HITS} h WHERE h.ref = e.ref) AS n
            FROM __erase_tokens e WHERE NOT e.linked ORDER BY e.ref, e.type, e.token""").fetchall()
        linked_rows = con.execute(
            "SELECT type, token, ref FROM __erase_tokens WHERE linked ORDER BY ref, type, token"
        ).fetchall()
        refs_hit = {str(r[0]) for r in con.execute(f"SELECT DISTINCT ref FROM {HITS}").fetchall()}
        with run.timed("outputs"):
            rewritten: dict[str, int] = {}
            for path in sorted(set((outputs or []) + latest_clean_outputs(ws))):
                n = _scrub_file(ws, path, key)
                if n:
                    rewritten[str(path)] = n
    finally:
        _cleanup(con)
    requested_refs = sorted({str(r[2]) for r in per_request})
    not_found = [r for r in requested_refs if r not in refs_hit]
    found = sum(1 for row in per_request if row[2] in refs_hit)
    audit_path = log_dir(ws, out_dir, audit_log)
    writer = AuditWriter(audit_path, run.run_id, hasher, command="erase", lock_timeout=ws.lock_timeout)
    writer.add({"type": "run", "command": "erase", "key_fingerprint": hasher.fingerprint, "requests": n_rows})
    day = now.strftime("%Y-%m-%d")
    for typ, token, ref, requested_at, n in per_request:
        writer.add(
            {
                "type": "erasure",
                "identifier": TOKEN_PREFIX + str(token),
                "identifier_type": typ,
                "request": ref,
                "requested_at": requested_at.strftime("%Y-%m-%d") if requested_at else None,
                "erased_at": day,
                "status": "erased" if ref in refs_hit else "not_found",
                "rows_removed": int(n),
            }
        )
    for typ, token, ref in linked_rows:
        writer.add(
            {
                "type": "erasure_linked",
                "identifier": TOKEN_PREFIX + str(token),
                "identifier_type": typ,
                "request": ref,
                "erased_at": day,
            }
        )
    for table, n in sorted(removed.items()):
        writer.add({"type": "erasure_table", "table": table, "rows_removed": n})
    for path_s, n in sorted(rewritten.items()):
        writer.add(
            {
                "type": "erasure_output",
                "path": path_s,
                "rows_removed": n,
                "sha256": file_entry(Path(path_s))["sha256"],
            }
        )
    result = EraseResult(
        run.run_id,
        n_rows,
        len(per_request),
        found,
        not_found,
        removed,
        len(linked_rows),
        rewritten,
        str(audit_path),
        "",
        "",
        hasher.fingerprint,
    )
    counts = {
        "requests": n_rows,
        "identifiers": len(per_request),
        "found": found,
        "not_found": len(not_found),
        "rows_removed": sum(removed.values()),
        "outputs_rewritten": len(rewritten),
    }
    result.audit_head = writer.seal({"counts": counts})
    manifest_path = out_dir / "erase.manifest.json"
    write_manifest(
        manifest_path,
        {
            "run_id": run.run_id,
            "command": "erase",
            "started_at": run.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "inputs": [{"path": "(request file: not recorded, it holds personal data)", "rows": n_rows}],
            "outputs": [file_entry(Path(p), rows_removed=n) for p, n in sorted(rewritten.items())],
            "counts": counts,
            "rows_removed_by_table": removed,
            "audit": {"path": str(audit_path), "head_sha256": result.audit_head, "entries": writer.count},
            "key_fingerprint": hasher.fingerprint,
            "timings_seconds": run.timings,
            "status": "pass",
        },
    )
    result.manifest_path = str(manifest_path)
    if not ws.in_memory:
        con.execute("CHECKPOINT")
    for p in sorted(rewritten):
        run.step.output("rewritten", Path(p))
    run.step.counts(counts)
    ws.finish_run(
        run,
        "pass",
        0,
        {
            "counts": counts,
            "key_fingerprint": hasher.fingerprint,
            "outputs": [file_entry(Path(p).resolve(), rows_removed=n) for p, n in sorted(rewritten.items())],
        },
    )
    return result


def _linked_identifiers(ws: Workspace, tables: dict[str, IdentityColumns], keys: dict[str, str]) -> str:
    """Temp table ``(type, norm, ref)``: ids, emails and valid phones of every row about to be erased.

    Their tokens are recorded too, so a later import drops these people even by another identifier.
    An email or phone that rows *not* being erased also carry (``info@company.es``, a shared
    landline) is left out: it identifies someone else too.
    """
    from crmtool.normalise import phone_e164
    from crmtool.privacy.identity import norm_email

    con = ws.con
    con.execute("CREATE OR REPLACE TEMP TABLE __erase_linked_raw (type VARCHAR, value VARCHAR, ref VARCHAR)")
    for table, cols in tables.items():
        hit = f"FROM {ident(table)} t JOIN {HITS} h ON h.tbl = {sql_str(table)} AND h.rid = t.rowid"
        if cols.id:
            con.execute(
                f"INSERT INTO __erase_linked_raw SELECT DISTINCT '{ID}', {id_sql('t.' + ident(cols.id))}, h.ref {hit}"
            )
        for kind, names in ((EMAIL, cols.emails), (PHONE, cols.phones)):
            for col in names:
                con.execute(
                    f"INSERT INTO __erase_linked_raw SELECT DISTINCT '{kind}', CAST(t.{ident(col)} AS VARCHAR), h.ref "
                    f"{hit}"
                )
    raw = con.execute(
        f"SELECT DISTINCT type, value FROM __erase_linked_raw WHERE type <> '{ID}' AND value IS NOT NULL"
    ).fetchall()
    normed: list[tuple[str, str, str | None]] = []
    for typ, value in raw:
        if typ == EMAIL:
            v = norm_email(value)
            normed.append((typ, value, v if v and "@" in v else None))
        else:
            normed.append((typ, value, phone_e164(value)))  # garbage phones are not identifiers
    import pyarrow as pa

    con.register(
        "__erase_arrow",
        pa.table(
            {
                "type": pa.array([n[0] for n in normed], pa.string()),
                "value": pa.array([n[1] for n in normed], pa.string()),
                "norm": pa.array([n[2] for n in normed], pa.string()),
            }
        ),
    )
    con.execute("""CREATE OR REPLACE TEMP TABLE __erase_linked AS
        SELECT DISTINCT l.type, CASE WHEN l.type = 'id' THEN l.value ELSE a.norm END AS norm, l.ref
        FROM __erase_linked_raw l LEFT JOIN __erase_arrow a ON a.type = l.type AND a.value = l.value
        WHERE CASE WHEN l.type = 'id' THEN l.value ELSE a.norm END IS NOT NULL""")
    con.unregister("__erase_arrow")
    # identifiers that people who stay also carry are not theirs alone: leave them out (the keys
    # tables hold every row's normalised email and phone key, so this costs no further scan)
    con.execute("CREATE OR REPLACE TEMP TABLE __erase_shared (type VARCHAR, value VARCHAR)")
    for table, cols in tables.items():
        others = f"FROM {keys[table]} k WHERE k.rid NOT IN (SELECT rid FROM {HITS} WHERE tbl = {sql_str(table)})"
        for e in range(len(cols.emails)):
            con.execute(
                f"INSERT INTO __erase_shared SELECT DISTINCT '{EMAIL}', k.em{e} {others} AND k.em{e} IN "
                f"(SELECT norm FROM __erase_linked WHERE type = '{EMAIL}')"
            )
        for j in range(len(cols.phones)):
            con.execute(
                f"INSERT INTO __erase_shared SELECT DISTINCT '{PHONE}', k.pk{j} {others} AND k.pk{j} IN "
                f"(SELECT {phone_key_sql('norm')} FROM __erase_linked WHERE type = '{PHONE}')"
            )
    con.execute(f"""DELETE FROM __erase_linked WHERE
        (type = '{EMAIL}' AND norm IN (SELECT value FROM __erase_shared WHERE type = '{EMAIL}'))
        OR (type = '{PHONE}'
            AND {phone_key_sql("norm")} IN (SELECT value FROM __erase_shared WHERE type = '{PHONE}'))""")
    con.execute("DROP TABLE IF EXISTS __erase_linked_raw")
    con.execute("DROP TABLE IF EXISTS __erase_shared")
    return "__erase_linked"


# --------------------------------------------------------------------------- check
@dataclass
class RequestCheck:
    ref: str
    identifiers: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return all(i["recorded"] and i["present_rows"] == 0 and i["audited"] is not False for i in self.identifiers)


@dataclass
class CheckResult:
    requests: list[RequestCheck]
    audit_path: str | None

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.requests)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "audit": self.audit_path,
            "requests": [{"request": r.ref, "ok": r.ok, "identifiers": r.identifiers} for r in self.requests],
        }


def check_erasures(
    ws: Workspace, requests: Path, *, audit_log: Path | None = None, key: str | None = None
) -> CheckResult:
    """Per request: its tokens are recorded as erased, no workspace row matches, the audit log says so."""
    from crmtool.audit import iter_entries

    ws.hasher  # noqa: B018
    con = ws.con
    ensure_tables(con)
    audited: set[str] | None = None
    if audit_log is not None:
        audited = {
            str(e.get("identifier")) for e in iter_entries(audit_log) if e.get("type") in ("erasure", "erasure_linked")
        }
    try:
        _load_requests(ws, requests)
        _targets_from(con, "__erase_req")
        _new_hits(con)
        for table, cols in customer_tables(con, key).items():
            _match_clear(con, table, cols, TARGETS, HITS)
        rows = con.execute(f"""
            SELECT e.ref, e.type, crm_token(e.norm) AS token,
                   EXISTS (SELECT 1 FROM privacy_erasures p WHERE p.token = crm_token(e.norm)) AS recorded,
                   (SELECT count(*) FROM {HITS} h WHERE h.ref = e.ref) AS present
            FROM (SELECT DISTINCT ref, type, norm FROM __erase_req WHERE norm IS NOT NULL) e
            ORDER BY e.ref, e.type, token""").fetchall()
    finally:
        _cleanup(con)
    by_ref: dict[str, RequestCheck] = {}
    for ref, typ, token, recorded, present in rows:
        check = by_ref.setdefault(str(ref), RequestCheck(str(ref), []))
        check.identifiers.append(
            {
                "type": typ,
                "identifier": TOKEN_PREFIX + str(token),
                "recorded": bool(recorded),
                "present_rows": int(present),
                "audited": None if audited is None else (TOKEN_PREFIX + str(token)) in audited,
            }
        )
    return CheckResult([by_ref[k] for k in sorted(by_ref)], str(audit_log) if audit_log else None)


# --------------------------------------------------------------------------- never come back
def erasure_kinds(ws: Workspace) -> set[str]:
    ensure_tables(ws.con)
    return {str(r[0]) for r in ws.con.execute("SELECT DISTINCT identifier_type FROM privacy_erasures").fetchall()}


def token_table(
    ws: Workspace,
    table: str,
    key_column: str | None,
    email_column: str | None,
    phone_column: str | None,
    *,
    id_tokens: bool,
    email_tokens: bool,
    phone_keys: bool,
    name: str,
) -> str:
    """One scan of ``table`` into temp table ``name``: ``rid`` plus, as asked, ``id``/``it`` (id and its
    token), ``em``/``et`` (normalised email and its token), ``ph``/``pkt`` (raw phone, token of its key)."""
    con = ws.con
    ws.hasher  # noqa: B018 - registers crm_token()
    parts = ["t.rowid AS rid"]
    join = ""
    if key_column:
        idv = id_sql(f"t.{ident(key_column)}")
        parts.append(f"{idv} AS id")
        if id_tokens:
            parts.append(f"crm_token({idv}) AS it")
    if email_column:
        expr, join = email_norm(con, table, email_column, "t")
        parts.append(f"nullif({expr}, '') AS em")
        if email_tokens:
            parts.append(f"crm_token(nullif({expr}, '')) AS et")
    if phone_column and phone_keys:
        c = f"t.{ident(phone_column)}"
        parts.append(f"CAST({c} AS VARCHAR) AS ph")
        parts.append(f"crm_token({phone_key_sql(c)}) AS pkt")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(name)} AS SELECT {', '.join(parts)} FROM {ident(table)} t {join}")
    return name


def erased_from_tokens(
    ws: Workspace, tokens: str, kinds: set[str], *, has_id: bool, has_email: bool, has_phone: bool
) -> str | None:
    """SQL selecting ``rid`` of the rows of a :func:`token_table` whose identifiers were erased."""
    parts = []
    if has_id and ID in kinds:
        parts.append(
            f"SELECT rid FROM {tokens} WHERE it IN (SELECT token FROM privacy_erasures WHERE identifier_type = '{ID}')"
        )
    if has_email and EMAIL in kinds:
        parts.append(
            f"SELECT rid FROM {tokens} WHERE et IN "
            f"(SELECT token FROM privacy_erasures WHERE identifier_type = '{EMAIL}')"
        )
    if has_phone and PHONE in kinds:
        from crmtool.db import fetch_arrow

        cand = (
            fetch_arrow(
                ws.con, f"SELECT DISTINCT ph FROM {tokens} WHERE pkt IN (SELECT key_token FROM privacy_match_keys)"
            )
            .column(0)
            .to_pylist()
        )
        if cand:
            pm = phone_norm_map(ws.con, cand)
            parts.append(
                f"SELECT k.rid FROM {tokens} k JOIN {pm} m ON m.raw = k.ph WHERE crm_token(m.norm) IN "
                f"(SELECT token FROM privacy_erasures WHERE identifier_type = '{PHONE}')"
            )
    return " UNION ".join(parts) if parts else None


def erased_rows_sql(
    ws: Workspace, table: str, key_column: str | None, email_column: str | None, phone_column: str | None
) -> str | None:
    """SQL selecting the ``rowid`` (as ``rid``) of rows of ``table`` whose identifiers were erased.

    ``None`` when nothing was ever erased. Builds the temp table ``__erased_tokens``.
    """
    kinds = erasure_kinds(ws)
    if not kinds:
        return None
    want_id, want_email, want_phone = (
        bool(key_column) and ID in kinds,
        bool(email_column) and EMAIL in kinds,
        bool(phone_column) and PHONE in kinds,
    )
    if not (want_id or want_email or want_phone):
        return None
    tok = token_table(
        ws,
        table,
        key_column if want_id else None,
        email_column if want_email else None,
        phone_column if want_phone else None,
        id_tokens=want_id,
        email_tokens=want_email,
        phone_keys=want_phone,
        name="__erased_tokens",
    )
    return erased_from_tokens(ws, tok, kinds, has_id=want_id, has_email=want_email, has_phone=want_phone)


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

    Call it right after loading an export, before anything else reads the table. Columns left as
    ``None`` are detected by name (``detect=False``: only the columns given are used). Costs one
    scan and one keyed hash per identifier column, and nothing when nobody was ever erased.
    """
    con = ws.con
    if detect and None in (key_column, email_column, phone_column):
        from crmtool.privacy.identity import detect_identity_columns

        cols = detect_identity_columns(con, table, key_column)
        key_column = key_column or cols.id
        email_column = email_column or (cols.emails[0] if cols.emails else None)
        phone_column = phone_column or (cols.phones[0] if cols.phones else None)
    try:
        sql = erased_rows_sql(ws, table, key_column, email_column, phone_column)
        if sql is None:
            return 0
        con.execute(f"CREATE OR REPLACE TEMP TABLE __erased_rows AS SELECT DISTINCT rid FROM ({sql})")
        n = int(con.execute("SELECT count(*) FROM __erased_rows").fetchall()[0][0])
        if n:
            con.execute(f"DELETE FROM {ident(table)} WHERE rowid IN (SELECT rid FROM __erased_rows)")
        return n
    finally:
        con.execute("DROP TABLE IF EXISTS __erased_rows")
        con.execute("DROP TABLE IF EXISTS __erased_tokens")
        drop_maps(con)


def compact_workspace_file(path: Path, lock_timeout: float = 60.0) -> int:
    """Rewrite a workspace file so that deleted rows are gone from its bytes too; returns the new size.

    DuckDB deletes rows logically: their old blocks stay in the file until reused. Copying the
    database into a fresh file and swapping it in (under the workspace lock) leaves no trace of
    erased people in the file. Call it after the workspace is closed (``crmtool erase`` does).
    """
    import os

    import duckdb
    from filelock import FileLock, Timeout

    from crmtool.errors import WorkspaceBusy

    if str(path) == ":memory:" or not path.is_file():
        return 0
    lock = FileLock(str(path) + ".lock")
    try:
        lock.acquire(timeout=lock_timeout)
    except Timeout:
        raise WorkspaceBusy(
            f"workspace {path} is in use: cannot compact it after the erasure",
            "run 'crmtool erase' again when the other run ends",
        ) from None
    tmp = path.with_name(f".{path.name}.compact.tmp")
    try:
        tmp.unlink(missing_ok=True)
        con = duckdb.connect(str(path))
        try:
            name = con.execute("SELECT current_database()").fetchall()[0][0]
            con.execute(f"ATTACH {sql_str(str(tmp))} AS __crm_compact")
            con.execute(f"COPY FROM DATABASE {ident(name)} TO __crm_compact")
            con.execute("DETACH __crm_compact")
        finally:
            con.close()
        os.replace(tmp, path)
        return path.stat().st_size
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)
        lock.release()
