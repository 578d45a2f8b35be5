"""Access and portability requests: everything crmtool holds about one person, as JSON and CSV.

``subject_export(ws, identifier)`` takes any identifier (customer id, email, phone, NIF/NIE/CIF,
in any spelling), finds the person through :mod:`crmtool.identity` (their dedupe cluster and
customer id), and gathers their rows from every workspace table that holds customer rows, from
every file crmtool wrote that still exists (the ``crm_outputs`` registry), and their entries in
the suppression, bounce and erasure registers. Only that person's rows: an identifier that leads
to more than one person is refused (``ambiguous``), never merged. The files are written owner-only
in the out folder, and the audit log records the request with the identifier as a keyed token.

The two files are registered in ``crm_outputs`` (kind ``subject_export``), and the person's
identifiers as keyed tokens in ``privacy_subject_exports``: a later erasure or retention deletion
of that person deletes the files (:func:`drop_subject_exports`), since they hold nobody else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.errors import CrmToolError, ExitCode, InputError, UsageError
from crmtool.status import Status

if TYPE_CHECKING:
    from crmtool.io.writers import OutputOptions
    from crmtool.workspace import Workspace


KIND = "subject_export"
EXPORTS = "privacy_subject_exports"


class AmbiguousSubject(CrmToolError):
    """The identifier leads to more than one person: nothing is exported (exit 1)."""

    exit_code = ExitCode.CHECKS_FAILED


@dataclass
class SubjectExport:
    identifier: str  # keyed token
    people: int
    tables: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    registers: dict[str, int] = field(default_factory=dict)
    json_path: str = ""
    csv_path: str = ""

    @property
    def status(self) -> Status:
        """A run that returns has done its work (errors raise)."""
        return Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _rows(con: Any, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [{k: v for k, v in zip(names, row, strict=True) if k != "_row"} for row in cur.fetchall()]


def subject_export(
    ws: Workspace, identifier: str, *, kind: str | None = None, out_dir: Path = Path("out"),
    audit_log: Path | None = None, key: str | None = None, output: OutputOptions | None = None,
) -> SubjectExport:
    """Write ``subject-<token>.json`` and ``.csv`` with all this person's data; see the module doc
    (``output``: how the CSV looks, see :class:`crmtool.io.writers.OutputOptions`; the JSON is
    UTF-8 JSON whatever it says)."""
    from crmtool.audit import log_dir
    from crmtool.identity.canonical import canonical_given
    from crmtool.identity.keys import customer_tables, person_keys
    from crmtool.privacy.erase.outputs import SCRUB, load_output, match_file, registered_outputs
    from crmtool.privacy.identity import to_temp_table
    from crmtool.privacy.suppress_manage import _guess_type

    typ = kind or _guess_type(identifier)
    value = canonical_given(typ, identifier)
    if not value:
        raise UsageError(f"not a usable {typ}", "give an email, phone, NIF or customer id")
    token = "k:" + str(ws.hasher.token(value))
    con = ws.con
    con.execute("CREATE OR REPLACE TEMP TABLE __subject_t AS SELECT 'subject' AS ref, ? AS type, ? AS value",
                [typ, value])
    data: dict[str, Any] = {"identifier": token, "identifier_type": typ,
                            "exported_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "tables": {}, "files": {}, "registers": {}}
    all_keys = []
    try:
        for table, cols in customer_tables(con, key).items():
            all_keys.append((table, person_keys(con, table, cols)))
        hits = " UNION ".join(
            f"SELECT DISTINCT k.pid FROM {k.name} k JOIN __subject_t t ON t.type = k.type AND t.value = k.value"
            for _t, k in all_keys) or "SELECT NULL AS pid WHERE false"
        con.execute(f"CREATE OR REPLACE TEMP TABLE __subject_pids AS {hits}")
        people = int(con.execute("SELECT count(*) FROM __subject_pids WHERE pid NOT LIKE 'r:%'").fetchall()[0][0])
        if people > 1:
            raise AmbiguousSubject(f"this {typ} belongs to {people} different people: nothing exported",
                                   "ask for a customer id or NIF that names one person")
        for table, k in all_keys:
            rows = _rows(con, f'SELECT * FROM "{table}" WHERE rowid IN ({k.rows_of("SELECT pid FROM __subject_pids")})')
            if rows:
                data["tables"][table] = rows
        # the person's identifiers, to find them in files (ids, canonical emails, phones, NIFs)
        union = " UNION ".join(f"SELECT 'subject' AS ref, type, value FROM {k.name} WHERE pid IN "
                               f"(SELECT pid FROM __subject_pids)" for _t, k in all_keys)
        con.execute("CREATE OR REPLACE TEMP TABLE __subject_ids AS SELECT * FROM __subject_t"
                    + (f" UNION {union}" if union else ""))
        for path, _kind in registered_outputs(ws).current:
            try:
                side, loaded = load_output(path, SCRUB)
            except InputError:
                continue  # a file with a header and no rows (an empty rejects file) holds nobody
            try:
                to_temp_table(con, "SELECT * FROM __subject_ids", side, "__st")
                side.execute("CREATE TEMP TABLE __sp (ref VARCHAR, pid VARCHAR)")
                match_file(side, loaded, "__st", "__sp", key)
                rows = _rows(side, f"SELECT * FROM {SCRUB} WHERE rowid IN (SELECT rid FROM __scrub_hits)")
            finally:
                side.close()
            if rows:
                data["files"][str(path)] = rows
        data["registers"] = _registers(ws)
        tokens = [(str(t), str(k)) for t, k in con.execute(
            "SELECT DISTINCT type, crm_token(value) FROM __subject_ids ORDER BY 1, 2").fetchall()]
    finally:
        for _t, k in all_keys:
            k.drop()
        for t in ("__subject_t", "__subject_pids", "__subject_ids"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
    result = SubjectExport(token, people, {t: len(r) for t, r in data["tables"].items()},
                           {p: len(r) for p, r in data["files"].items()},
                           {r: len(v) for r, v in data["registers"].items()})
    _write(result, data, out_dir, output)
    _audit(ws, result, log_dir(ws, out_dir, audit_log), tokens)
    return result


def _registers(ws: Workspace) -> dict[str, list[dict[str, Any]]]:
    """The person's entries in the token registers (suppressions, bounces, erasures)."""
    out: dict[str, list[dict[str, Any]]] = {}
    con = ws.con
    ws.hasher  # noqa: B018 - crm_token()
    tokens = "SELECT crm_token(value) FROM __subject_ids"
    for table, column in (("privacy_suppressions", "token"), ("email_bounces", "token"), ("privacy_erasures", "token")):
        if ws.table_exists(table):
            rows = _rows(con, f"SELECT * EXCLUDE ({column}) FROM {table} WHERE {column} IN ({tokens})")
            if rows:
                out[table] = rows
    return out


def _write(result: SubjectExport, data: dict[str, Any], out_dir: Path, output: OutputOptions | None) -> None:
    """The JSON (UTF-8, the values exactly as held) and the CSV in long format (source, kind,
    record, field, value), which looks as ``output`` says like every CSV crmtool writes."""
    from crmtool.io.writers import write_rows, write_text_atomic

    stem = out_dir / f"subject-{result.identifier[2:18]}"
    result.json_path, result.csv_path = str(stem.with_suffix(".json")), str(stem.with_suffix(".csv"))
    write_text_atomic(Path(result.json_path), json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    # one person's rows: few enough to build in Python
    cells = [[source, kind, i, k, "" if v is None else str(v)]
             for kind, groups in (("table", data["tables"]), ("file", data["files"]), ("register", data["registers"]))
             for source, rows in groups.items() for i, row in enumerate(rows, 1) for k, v in row.items()]
    write_rows(Path(result.csv_path), ["source", "kind", "record", "field", "value"], cells, output)
    for p in (result.json_path, result.csv_path):
        Path(p).chmod(0o600)  # the person's data, for the person: owner-only until handed over


def _audit(ws: Workspace, result: SubjectExport, path: Path, tokens: list[tuple[str, str]]) -> None:
    from crmtool.audit import AuditWriter

    run = ws.start_run("subject export")
    con = ws.con
    con.execute(f"CREATE TABLE IF NOT EXISTS {EXPORTS} (path VARCHAR, identifier_type VARCHAR, token VARCHAR, "
                "run_id VARCHAR, exported_at TIMESTAMP)")
    now = datetime.now(UTC).replace(tzinfo=None)
    for written in (result.json_path, result.csv_path):
        target = Path(written).resolve()
        run.step.output(KIND, target)  # registered with the run: a later erasure finds the file
        con.executemany(f"INSERT INTO {EXPORTS} VALUES (?, ?, ?, ?, ?)",
                        [(str(target), typ, token, run.run_id, now) for typ, token in tokens])
    writer = AuditWriter(path, run.run_id, ws.hasher, command="subject export", lock_timeout=ws.lock_timeout)
    writer.add({"type": "run", "command": "subject export", "key_fingerprint": ws.hasher.fingerprint})
    writer.add({"type": "subject_export", "identifier": result.identifier, "people": result.people,
                "tables": result.tables, "files": len(result.files), "registers": result.registers,
                "key_fingerprint": ws.hasher.fingerprint})
    writer.seal({"counts": {"tables": len(result.tables), "files": len(result.files)}})
    ws.finish_run(run, "pass", 0, {"tables": result.tables, "files": len(result.files)})


def drop_subject_exports(ws: Workspace, targets_sql: str) -> list[Path]:
    """Delete the subject exports of the people in ``targets_sql`` (``type, value`` in canonical form)
    that are still as crmtool wrote them; returns the files deleted. A file changed since is left
    alone (the output registry reports it as changed)."""
    from crmtool.io.readers import file_sha256

    if not ws.table_exists(EXPORTS):
        return []
    con = ws.con
    ws.hasher  # noqa: B018 - crm_token()
    paths = [Path(str(r[0])) for r in con.execute(
        f"""SELECT DISTINCT s.path FROM {EXPORTS} s JOIN (SELECT DISTINCT type, crm_token(value) AS token
            FROM ({targets_sql})) t ON t.type = s.identifier_type AND t.token = s.token ORDER BY 1""").fetchall()]
    latest = {rec.path.resolve(): rec.sha256 for rec in ws.outputs(kinds=(KIND,))}
    gone = [p for p in paths if p.is_file() and file_sha256(p) == latest.get(p.resolve())]
    for path in gone:
        path.unlink()
    if gone:
        con.executemany(f"DELETE FROM {EXPORTS} WHERE path = ?", [(str(p),) for p in gone])
    return gone
