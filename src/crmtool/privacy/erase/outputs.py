"""Step 3 of an erasure: rewrite every file crmtool wrote that still holds the people being erased.

Which files: the ``crm_outputs`` registry (:meth:`crmtool.workspace.Workspace.outputs`), where
every command that writes person-level files registers them with their SHA-256, plus the outputs
older runs listed in their summaries (workspaces from before the registry). A file is rewritten
only when it is still exactly as crmtool last wrote it (its hash is the newest registered one);
a file changed since is reported, never touched. The new version is registered again, so the
next erasure or retention finds it.

Each file is read in a private in-memory database (its clear values never reach the workspace
file), matched through the same person keys as the workspace, and rewritten as it was read: same
format and dialect (delimiter, encoding, byte-order mark; see
:func:`crmtool.io.writers.options_as_written`). A rejects file's ``_raw`` lines (unparseable rows)
are matched by substring on the erased emails, NIFs and phone digits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.errors import InputError
from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb

    from crmtool.identity.valuemap import ValueMaps
    from crmtool.io.readers import LoadResult
    from crmtool.workspace import Workspace

#: registered kinds that never hold person-level rows in clear
NOT_PERSONAL_KINDS = ("audit", "manifest", "report", "metrics", "junit", "html")
LEGACY_COMMANDS = ("clean", "erase", "retention")
SCRUB = "__privacy_scrub"


@dataclass
class OutputState:
    current: list[tuple[Path, str]] = field(default_factory=list)  # (path, kind): still as crmtool wrote it
    changed: list[Path] = field(default_factory=list)  # exists, but not what crmtool wrote last
    missing: int = 0


def registered_outputs(ws: Workspace) -> OutputState:
    """Person-level files crmtool wrote that still exist, newest registration per path."""
    from crmtool.io.readers import file_sha256

    latest: dict[Path, tuple[str, str]] = {}
    for marks in _legacy(ws):
        latest[marks[0]] = (marks[1], "clean")
    for rec in ws.outputs():
        if rec.kind not in NOT_PERSONAL_KINDS:
            latest[rec.path.resolve()] = (rec.sha256, rec.kind)
    state = OutputState()
    for path, (sha, kind) in sorted(latest.items()):
        if not path.is_file():
            state.missing += 1
        elif file_sha256(path) == sha:
            state.current.append((path, kind))
        else:
            state.changed.append(path)
    return state


def _legacy(ws: Workspace) -> list[tuple[Path, str]]:
    marks = ", ".join(f"'{c}'" for c in LEGACY_COMMANDS)
    rows = ws.con.execute(
        f"SELECT summary FROM crm_runs WHERE command IN ({marks}) AND summary IS NOT NULL ORDER BY started_at"
    ).fetchall()
    out: list[tuple[Path, str]] = []
    for (summary,) in rows:
        try:
            for entry in json.loads(summary).get("outputs", []):
                path = Path(str(entry.get("path", "")))
                # a relative path cannot be placed: only absolute ones (the registry keeps those)
                if entry.get("sha256") and path.is_absolute() and path.suffix in (".csv", ".parquet"):
                    out.append((path, str(entry["sha256"])))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return out


def load_output(path: Path, table: str) -> tuple[duckdb.DuckDBPyConnection, LoadResult]:
    """Read an output file back: plain UTF-8 CSV straight through DuckDB (fast), else via the readers."""
    from crmtool.privacy.identity import load_side

    plain = _load_plain_csv(path, table)
    return plain if plain is not None else load_side(path, table)


def _load_plain_csv(path: Path, table: str, *, narrow: bool = False, key: str | None = None,
                    ) -> tuple[duckdb.DuckDBPyConnection, LoadResult] | None:
    """:func:`load_output`'s fast path: a UTF-8 CSV without a byte-order mark, every value as text,
    one row per record in the file's order; ``None`` when the file is not one (the readers then read it).

    ``narrow``: only the columns matching reads (:func:`_matched_columns`, ``key`` as there) are kept;
    the result's ``columns`` still name every column of the file."""
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
                src = (f"read_csv({sql_str(str(path))}, header=true, auto_detect=false, delim={sql_str(delimiter)}, "
                       f"quote='\"', escape='\"', columns={spec}, strict_mode=true, max_line_size=10000000)")
                try:
                    picked = "*"
                    if narrow:  # DuckDB's reader then materialises only these columns
                        side.execute(f"CREATE TABLE {table} AS SELECT * FROM {src} LIMIT 0")
                        picked = ", ".join(ident(c) for c in _matched_columns(side, table, header, key))
                        side.execute(f"DROP TABLE {table}")
                    side.execute(f"CREATE TABLE {table} AS SELECT {picked} FROM {src}")
                    rows = int(side.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
                    return side, LoadResult(table, path, "csv", rows, list(header), "utf-8", delimiter)
                except duckdb.Error:
                    side.close()
    return None


def _matched_columns(con: duckdb.DuckDBPyConnection, table: str, header: list[str], key: str | None) -> list[str]:
    """The columns of ``table`` (named ``header``) that :func:`match_file` reads: the identity columns
    and cluster as :func:`~crmtool.identity.keys.detect_identity_columns` finds them (a table of just
    these finds the same), a rejects file's ``_raw``, an audience file's ``email`` and ``phone``."""
    from crmtool.identity.keys import detect_identity_columns

    cols = detect_identity_columns(con, table, key)
    wanted = {*cols.columns(), *([cols.cluster] if cols.cluster else []), "_raw", "email", "phone"}
    return [c for c in header if c in wanted] or header[:1]


def drop_lines(path: Path, rows: int, rids: list[int]) -> bool:
    """Rewrite the plain CSV ``path`` (a header line, then one line per row: ``rows`` rows as
    :func:`_load_plain_csv` read them) without the lines of the rows ``rids`` (0-based, file order),
    every other byte kept as it is. Returns False, changing nothing, when its lines are not its rows
    one to one (a quoted value spanning lines, a blank line): the caller then writes it from the table.

    The lines are found with one vectorised pass over the bytes; the file is written as the runs of
    kept lines between the dropped ones, atomically."""
    import numpy as np

    from crmtool.io.writers import atomic_path

    data = path.read_bytes()
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10) + 1  # each line's end (after its line feed)
    if data and not data.endswith(b"\n"):
        ends = np.append(ends, len(data))
    if len(ends) != rows + 1:  # a record over several lines, or lines that are no record
        return False
    starts = np.concatenate(([0], ends[:-1]))
    length = ends - starts
    crlf_only = (length == 2) & (buf[starts] == 13)
    if bool(np.any(length <= 1) | np.any(crlf_only)):  # a blank line is no row: lines and rows may not pair
        return False
    drop = sorted({r + 1 for r in rids})  # line 0 is the header
    view = memoryview(data)
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        at = 0
        for line in drop:
            fh.write(view[at:int(starts[line])])
            at = int(ends[line])
        fh.write(view[at:])
    return True


def match_file(
    side: duckdb.DuckDBPyConnection, loaded: LoadResult, targets: str, pids: str, key: str | None,
    maps: ValueMaps | None = None,
) -> None:
    """Temp table ``__scrub_hits (rid, ref)`` on ``side``: rows of the loaded file naming a target.

    ``targets (ref, type, value)`` and ``pids (ref, pid)`` must already be on ``side``. ``maps``: the
    erasure's value maps on the workspace, whose ``__erase_targets`` are ``targets``: the file's
    texts the workspace holds are not canonicalised again (:func:`~crmtool.identity.valuemap.match_other_db`).
    """
    from crmtool.identity.keys import detect_identity_columns, person_rows_sql
    from crmtool.identity.lookup import lookup_keys
    from crmtool.identity.valuemap import match_other_db
    from crmtool.privacy.erase.match import TARGETS

    if _is_audience(loaded):
        _audience_hits(side, targets)
        return
    cols = detect_identity_columns(side, SCRUB, key)
    if maps is not None:
        sql, made = match_other_db(side, SCRUB, cols, maps, TARGETS, targets)
        try:
            side.execute(f"""CREATE OR REPLACE TEMP TABLE __scrub_hits AS SELECT DISTINCT rid, ref FROM ({sql})
                UNION SELECT DISTINCT r.rid, p.ref FROM ({person_rows_sql(side, SCRUB, cols, clusters=False)}) r
                JOIN {pids} p ON p.pid = r.pid WHERE p.pid NOT LIKE 'r:%'""")
        finally:
            for t in made:
                side.execute(f"DROP TABLE IF EXISTS {t}")
    else:
        # one scan of the file keeps only the lines of the targets' values (no line of anyone else is made)
        keys = lookup_keys(side, SCRUB, cols, name="__scrub_keys", clusters=False,
                           only=f"SELECT type, value FROM {targets}")
        try:
            side.execute(f"""CREATE OR REPLACE TEMP TABLE __scrub_hits AS
                SELECT DISTINCT k.rid, t.ref FROM {keys.name} k
                JOIN {targets} t ON t.type = k.type AND t.value = k.value
                UNION SELECT DISTINCT r.rid, p.ref FROM {keys.rows} r JOIN {pids} p ON p.pid = r.pid
                WHERE p.pid NOT LIKE 'r:%'""")
        finally:
            keys.drop()
    if "_raw" in loaded.columns:  # raw lines of unparseable rows in a rejects file
        side.execute(f"""INSERT INTO __scrub_hits SELECT DISTINCT s.rowid, t.ref FROM {SCRUB} s
            JOIN {targets} t ON s._raw IS NOT NULL AND (
                (t.type IN ('email', 'nif') AND contains(lower(s._raw), lower(t.value)))
                OR (t.type = 'id' AND length(t.value) >= 4 AND contains(s._raw, t.value))
                OR (t.type = 'phone' AND length(t.value) >= 9
                    AND contains(regexp_replace(s._raw, '[^0-9]', '', 'g'), right(t.value, 9))))""")


def _is_audience(loaded: LoadResult) -> bool:
    return set(loaded.columns) - {"_row"} == {"email", "phone"}


def _audience_hits(side: duckdb.DuckDBPyConnection, targets: str) -> None:
    """An ad-platform audience file (``email``, ``phone`` as SHA-256 hex): rows holding a platform's
    hash of a target email or phone."""
    import pyarrow as pa

    from crmtool.identity.platforms import PLATFORMS, hash_email, hash_phone

    values = side.execute(
        f"SELECT DISTINCT ref, type, value FROM {targets} WHERE type IN ('email', 'phone')"
    ).fetchall()
    rows = [
        (ref, typ, h)
        for ref, typ, value in values
        for platform in PLATFORMS
        if (h := hash_email(value, platform) if typ == "email" else hash_phone(value, platform))
    ]
    side.register("__aud_t", pa.table({"ref": pa.array([r[0] for r in rows], pa.string()),
                                       "type": pa.array([r[1] for r in rows], pa.string()),
                                       "h": pa.array([r[2] for r in rows], pa.string())}))
    side.execute(f"""CREATE OR REPLACE TEMP TABLE __scrub_hits AS SELECT DISTINCT s.rowid AS rid, t.ref
        FROM {SCRUB} s JOIN __aud_t t
        ON (t.type = 'email' AND t.h = s.email) OR (t.type = 'phone' AND t.h = s.phone)""")
    side.unregister("__aud_t")


def scrub_file(ws: Workspace, path: Path, key: str | None, maps: ValueMaps | None = None) -> int:
    """Rewrite ``path`` without the rows of the people being erased; returns rows removed (``maps``: the
    erasure's value maps, see :func:`match_file`)."""
    from crmtool.io.writers import options_as_written, write_query
    from crmtool.privacy.erase.match import PIDS, TARGETS
    from crmtool.privacy.identity import load_side, to_temp_table

    # a plain CSV is matched on its identity columns only: its kept lines are copied as bytes
    plain = _load_plain_csv(path, SCRUB, narrow=True, key=key)
    try:
        side, loaded = plain if plain is not None else load_side(path, SCRUB)
    except InputError:
        return 0
    try:
        to_temp_table(ws.con, f"SELECT ref, type, value FROM {TARGETS}", side, "__scrub_targets")
        to_temp_table(ws.con, f"SELECT ref, pid FROM {PIDS}", side, "__scrub_pids")
        match_file(side, loaded, "__scrub_targets", "__scrub_pids", key, maps)
        rids = [int(r[0]) for r in side.execute("SELECT DISTINCT rid FROM __scrub_hits").fetchall()]
        removed = len(rids)
        # a plain CSV loses the erased rows' lines and keeps every other byte (no parse and write back)
        if removed and not (plain is not None and drop_lines(path, loaded.rows, rids)):
            if plain is not None:  # lines and rows do not pair: every column is read to write the rows back
                side.close()
                side, loaded = load_output(path, SCRUB)
                _copy_rids(side, rids)
            cols_sql = ", ".join(ident(c) for c in loaded.columns)
            fmt = "parquet" if loaded.format == "parquet" else "csv"
            # in the file's own order: the rows are deleted from the private copy, which is then
            # scanned as it is (insertion order kept, as the side connection's default says); an
            # anti-join returned DuckDB's parallel chunks interleaved, and ORDER BY rowid sorted
            # every remaining row of the file only to restore its order
            side.execute(f"DELETE FROM {SCRUB} WHERE rowid IN (SELECT rid FROM __scrub_hits)")  # same rowids
            write_query(
                side,
                f"SELECT {cols_sql} FROM {SCRUB}",
                path,
                fmt,
                # the dialect it was written in: delimiter, encoding, byte-order mark (see options_as_written)
                options=options_as_written(path, loaded.delimiter, loaded.encoding) if fmt == "csv" else None,
                neutralise_formulas=False,
            )
        return removed
    finally:
        side.close()


def _copy_rids(side: duckdb.DuckDBPyConnection, rids: list[int]) -> None:
    """Temp table ``__scrub_hits (rid)`` on ``side`` holding ``rids``."""
    import pyarrow as pa

    side.register("__scrub_rids", pa.table({"rid": pa.array(rids, pa.int64())}))
    try:
        side.execute("CREATE OR REPLACE TEMP TABLE __scrub_hits AS SELECT rid FROM __scrub_rids")
    finally:
        side.unregister("__scrub_rids")


def file_hits(ws: Workspace, path: Path, key: str | None) -> dict[str, int]:
    """For ``erase --check``: rows of ``path`` still naming each request (``__erase_req`` targets)."""
    from crmtool.privacy.erase.requests import REQ
    from crmtool.privacy.identity import to_temp_table

    try:
        side, loaded = load_output(path, SCRUB)
    except InputError:
        return {}
    try:
        to_temp_table(ws.con, f"SELECT ref, type, value FROM {REQ}", side, "__scrub_targets")
        side.execute("CREATE TEMP TABLE __scrub_pids (ref VARCHAR, pid VARCHAR)")
        match_file(side, loaded, "__scrub_targets", "__scrub_pids", key)
        return {str(r): int(n) for r, n in side.execute("SELECT ref, count(*) FROM __scrub_hits GROUP BY 1").fetchall()}
    finally:
        side.close()
