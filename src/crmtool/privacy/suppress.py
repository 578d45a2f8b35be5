"""Suppression lists: unsubscribes, complaints and do-not-contact files -> ``privacy_suppressions``.

A suppression file is any export crmtool can read (CSV in any common encoding and delimiter,
Parquet, xlsx). Identifier columns are found by name (email, phone, customer id); a file with a
single unnamed column is read value by value (``@`` -> email, mostly digits -> phone, else id).
Only keyed tokens of the normalised identifiers are stored, with the kind, the source file name
and the date (from a date column when there is one, else now). Importing the same file twice adds
nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.errors import InputError, UsageError
from crmtool.identity.canonical import EMAIL, ID, NIF, PHONE, phone_key_sql
from crmtool.identity.keys import ID_NAMES, table_columns
from crmtool.privacy.consent import date_sql
from crmtool.privacy.identity import ensure_tables, load_side, to_temp_table
from crmtool.sqltext import ident, sql_str
from crmtool.status import Status

if TYPE_CHECKING:
    import duckdb

    from crmtool.io.readers import ReadOptions
    from crmtool.workspace import Workspace

KINDS = ("unsubscribe", "complaint", "do_not_contact")
DATE_NAME = re.compile(r"date|fecha|_at$|^at$|when|time|dia|day", re.IGNORECASE)
STAGING = "__privacy_import"


@dataclass
class IdentifierFile:
    """The identifier columns found in a loaded file."""

    table: str
    columns: dict[str, list[str]] = field(default_factory=dict)  # type -> columns
    infer_column: str | None = None  # a single column whose type is inferred per value
    date_column: str | None = None
    ref_column: str | None = None


def classify_columns(
    con: duckdb.DuckDBPyConnection, table: str, path: Path, *, ref_names: tuple[str, ...] = ()
) -> IdentifierFile:
    """Find id/email/phone (and date, reference) columns of a loaded identifier file."""
    from crmtool.pii import category_from_name

    cols = [c for c, _t in table_columns(con, table) if c != "_row"]
    found = IdentifierFile(table)
    rest = []
    for col in cols:
        low = col.strip().lower()
        if low in ref_names and found.ref_column is None:
            found.ref_column = col
            continue
        category = category_from_name(col)
        if low in ID_NAMES or category == "customer_id":
            found.columns.setdefault(ID, []).append(col)
        elif category == "email":
            found.columns.setdefault(EMAIL, []).append(col)
        elif category == "phone":
            found.columns.setdefault(PHONE, []).append(col)
        elif category == "national_id":
            found.columns.setdefault(NIF, []).append(col)
        elif DATE_NAME.search(low) and found.date_column is None:
            found.date_column = col
        elif low in ("identifier", "identificador", "value", "valor", "contact", "contacto"):
            found.infer_column = col
        else:
            rest.append(col)
    if not found.columns and found.infer_column is None:
        if len(rest) == 1:
            found.infer_column = rest[0]
        else:
            raise InputError(
                f"{path}: no identifier column found (columns: {', '.join(cols)})",
                "name a column email, phone or customer_id (or give a file with one column)",
            )
    return found


def identifier_rows_sql(ident_file: IdentifierFile, extra: str = "") -> str:
    """SQL ``(_row, type, [extra, ] raw)`` unpivoting every identifier column (blanks dropped; an email
    cell of several addresses gives one row each)."""
    parts = []
    t = ident(ident_file.table)
    for kind, cols in sorted(ident_file.columns.items()):
        for col in cols:
            parts.append(f"SELECT _row, '{kind}' AS type, CAST({ident(col)} AS VARCHAR) AS raw{extra} FROM {t}")
    if ident_file.infer_column:
        v = f"trim(CAST({ident(ident_file.infer_column)} AS VARCHAR))"
        inferred = (
            f"CASE WHEN contains({v}, '@') THEN '{EMAIL}' "
            f"WHEN regexp_full_match(upper({v}), '(ES)?[0-9XYZKLM][ .\\-]?[0-9]{{7}}[ .\\-]?[A-Z]') THEN '{NIF}' "
            f"WHEN regexp_full_match({v}, '[+0-9 ().\\-]{{7,}}') THEN '{PHONE}' ELSE '{ID}' END"
        )
        parts.append(f"SELECT _row, {inferred} AS type, {v} AS raw{extra} FROM {t}")
    union = " UNION ALL ".join(parts)
    # an email cell listing several addresses ('a@x.es; b@y.es', 'a@x.es, b@y.es') is one identifier
    # per address: each is suppressed, and an erasure request naming them is one request about each
    split = (f"SELECT * EXCLUDE (raw, __parts), unnest(__parts) AS raw FROM (SELECT *, CASE WHEN type = '{EMAIL}' "
             f"AND regexp_matches(raw, '[;,]') THEN string_split_regex(raw, '[;,]') ELSE [raw] END AS __parts "
             f"FROM ({union}))")
    return f"SELECT * FROM ({split}) WHERE nullif(trim(raw), '') IS NOT NULL"


def normalised_identifiers(ws: Workspace, rows_table: str, out_table: str) -> None:
    """From ``rows_table (_row, type, raw, ...)`` build ``out_table`` adding ``norm``, ``token`` and ``pkey``.

    ``norm`` is the canonical form of :mod:`crmtool.identity` (emails with their provider's rules,
    phones E.164, NIFs compact, ids trimmed); ``pkey`` the keyed token of the phone key (phones only).
    """
    from crmtool.identity.canonical import register_sql
    from crmtool.identity.keys import values_sql

    con = ws.con
    ws.hasher  # noqa: B018 - registers crm_token()
    register_sql(con)
    made: list[str] = []
    parts = []
    try:
        for kind in (ID, EMAIL, PHONE, NIF):
            src = f"SELECT rowid AS rid, raw AS v FROM {ident(rows_table)} WHERE type = '{kind}'"
            sql, m = values_sql(con, kind, src, plain=False)
            made += m
            parts.append(f"SELECT rid, value AS norm FROM ({sql})")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {ident(out_table)} AS
            SELECT *, crm_token(norm) AS token,
                   CASE WHEN type = '{PHONE}' THEN crm_token({phone_key_sql("norm")}) END AS pkey
            FROM (SELECT s.*, n.norm FROM {ident(rows_table)} s
                  LEFT JOIN ({" UNION ALL ".join(parts)}) n ON n.rid = s.rowid)
        """)
    finally:
        for t in made:
            con.execute(f"DROP TABLE IF EXISTS {t}")


@dataclass
class SuppressResult:
    run_id: str
    path: Path
    kind: str
    rows: int
    identifiers: int
    added: dict[str, int]
    already_present: int
    unusable: int
    parse_rejects: int

    @property
    def status(self) -> Status:
        """A run that returns has done its work (errors raise)."""
        return Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "input": str(self.path),
            "kind": self.kind,
            "rows": self.rows,
            "identifiers": self.identifiers,
            "added": self.added,
            "added_total": sum(self.added.values()),
            "already_present": self.already_present,
            "unusable": self.unusable,
            "parse_rejects": self.parse_rejects,
        }


def import_suppressions(
    ws: Workspace, path: Path, kind: str, *, source: str | None = None, audit_log: Path | None = None,
    read: ReadOptions | None = None,
) -> SuppressResult:
    """Add the identifiers of ``path`` to ``privacy_suppressions`` as keyed tokens of ``kind``
    (``read``: the user's delimiter, encoding or xlsx sheet of ``path``).

    Every entry added is written to the audit log (default: the workspace's, see
    :func:`crmtool.audit.log_dir`) as a keyed token."""
    if kind not in KINDS:
        raise UsageError(f"unknown suppression kind {kind!r}", f"use one of {', '.join(KINDS)}")
    hasher = ws.hasher  # an unreadable key stops us before anything is written
    con = ws.con
    ensure_tables(con)
    run = ws.start_run("suppress import")
    side, loaded = load_side(path, STAGING, read)  # clear values stay out of the workspace file
    try:
        found = classify_columns(side, STAGING, path)
        when = date_sql(ident(found.date_column)) if found.date_column else "NULL"
        to_temp_table(
            side, identifier_rows_sql(found, f", CAST({when} AS TIMESTAMP) AS added_at"), con, "__privacy_ids"
        )
    finally:
        side.close()
    try:
        normalised_identifiers(ws, "__privacy_ids", "__privacy_ids_n")
        now = datetime.now(UTC).replace(tzinfo=None)
        src = source or path.name
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE __privacy_new AS
            SELECT type AS channel, token, min(coalesce(added_at, ?)) AS added_at, any_value(pkey) AS pkey
            FROM __privacy_ids_n n WHERE token IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM privacy_suppressions p
                              WHERE p.channel = n.type AND p.token = n.token AND p.kind = {sql_str(kind)})
            GROUP BY type, token""",
            [now],
        )
        con.execute(
            f"INSERT INTO privacy_suppressions "
            f"SELECT channel, token, {sql_str(kind)}, {sql_str(src)}, added_at "
            f"FROM __privacy_new ORDER BY channel, token"
        )
        con.execute(
            "INSERT INTO privacy_match_keys SELECT DISTINCT pkey, 'phone', ? FROM __privacy_new "
            "WHERE pkey IS NOT NULL AND pkey NOT IN (SELECT key_token FROM privacy_match_keys)",
            [now],
        )
        _audit_added(ws, run.run_id, audit_log, kind, src)
        added = {
            str(c): int(n)
            for c, n in con.execute(
                "SELECT channel, count(*) FROM __privacy_new GROUP BY channel ORDER BY channel"
            ).fetchall()
        }
        total, usable, distinct = con.execute(
            "SELECT count(*), count(token), count(DISTINCT (type, token)) FROM __privacy_ids_n"
        ).fetchall()[0]
    finally:
        for t in ("__privacy_ids", "__privacy_ids_n", "__privacy_new"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
    result = SuppressResult(
        run.run_id,
        path,
        kind,
        loaded.rows,
        int(total),
        added,
        int(distinct) - sum(added.values()),
        int(total) - int(usable),
        len(loaded.parse_rejects),
    )
    run.step.input(path, loaded.rows)
    run.step.counts(result.as_dict())
    run.step.metric("suppressed", con.execute("SELECT count(DISTINCT (channel, token)) FROM privacy_suppressions"
                                              ).fetchall()[0][0])
    ws.finish_run(run, "pass", 0, {**result.as_dict(), "key_fingerprint": hasher.fingerprint})
    return result


def _audit_added(ws: Workspace, run_id: str, audit_log: Path | None, kind: str, source: str) -> None:
    """One ``suppression_added`` row per new token (``__privacy_new``), as the run's change set."""
    from crmtool.audit import AuditWriter, log_dir

    writer = AuditWriter(log_dir(ws, Path("out"), audit_log), run_id, ws.hasher, command="suppress import",
                         lock_timeout=ws.lock_timeout)
    try:
        writer.add({"type": "run", "command": "suppress import", "kind": kind, "source": source,
                    "key_fingerprint": ws.hasher.fingerprint})
        added = writer.add_set(ws.con, "suppressions_added", f"""
            SELECT 'suppression_added' AS type, {sql_str(kind)} AS kind, channel, 'k:' || token AS identifier
            FROM __privacy_new""", order_by="identifier, channel")
    except BaseException:
        writer.abort()
        raise
    writer.seal({"counts": {"added": added}})
