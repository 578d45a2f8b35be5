"""Public API of the segments feature: what ``crmtool segment ...`` calls.

>>> from crmtool.segments.api import segment
>>> from crmtool.workspace import open_workspace
>>> with open_workspace("crmtool.duckdb") as ws:                         # doctest: +SKIP
...     result = segment(ws, Path("examples/clientes.csv"), Path("segments.yaml"),
...                      orders=Path("examples/pedidos.csv"), events=Path("examples/eventos.csv"),
...                      out_dir=Path("out"), as_of=date(2026, 11, 1))
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from crmtool.errors import ConfigError, EngineError, InputError, UsageError
from crmtool.io.digests import FileDigests
from crmtool.io.readers import ReadOptions
from crmtool.io.writers import OutputOptions
from crmtool.manifest import common_keys, file_entry, write_manifest
from crmtool.progress import Progress
from crmtool.segments import membership
from crmtool.segments.features import (
    CustomerColumns,
    InputStats,
    build_features,
    prepare_customers,
    prepare_events,
    prepare_orders,
    register_macros,
)
from crmtool.segments.membership import DiffResult, SegmentCounts
from crmtool.segments.model import SegmentsSpec
from crmtool.segments.protection import build_exclusions
from crmtool.segments.spec import load_segments
from crmtool.sqltext import ident, sql_str
from crmtool.status import Status
from crmtool.steps import Step
from crmtool.workspace import Run, Workspace

INPUT_TABLES = ("seg_in_customers", "seg_in_orders", "seg_in_events")


@dataclass
class SegmentResult:
    run_id: str
    as_of: date
    customers: int
    stats: InputStats
    segments: list[SegmentCounts]
    excluded_customers: dict[str, int]
    notes: list[str]
    previous_run: str | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    # send lists an earlier run wrote into OUT/segments/ for segments this file no longer has
    removed_lists: list[str] = field(default_factory=list)

    @property
    def status(self) -> Status:
        """A run that returns has done its work (errors raise)."""
        return Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "customers": self.customers,
            "inputs": self.stats.as_dict(),
            "segments": [s.as_dict() for s in self.segments],
            "excluded_customers": self.excluded_customers,
            "notes": self.notes,
            "previous_run": self.previous_run,
            "outputs": {k: str(v) for k, v in self.outputs.items()},
            "removed_lists": self.removed_lists,
        }


@dataclass
class PreviewResult:
    as_of: date
    customers: int
    stats: InputStats
    segments: list[SegmentCounts]
    overlap: list[list[int]]  # customers matching both conditions (before exclusive groups)

    @property
    def status(self) -> Status:
        """A preview that returns is complete; it writes nothing."""
        return Status.PASS

    def as_dict(self) -> dict[str, Any]:
        names = [s.name for s in self.segments]
        return {
            "as_of": self.as_of.isoformat(),
            "customers": self.customers,
            "inputs": self.stats.as_dict(),
            "segments": [s.as_dict() for s in self.segments],
            "overlap": {
                a: dict(zip(names, row, strict=True)) for a, row in zip(names, self.overlap, strict=True)
            },
        }


def _spec(spec: SegmentsSpec | Path) -> SegmentsSpec:
    return spec if isinstance(spec, SegmentsSpec) else load_segments(spec)


def _load(ws: Workspace, path: Path, table: str, read: ReadOptions | None = None) -> int:
    """Parquet is read in place (a view); CSV/xlsx go through the shared reader (encodings, rejects;
    ``read``: the user's delimiter, encoding or xlsx sheet).

    Returns the number of CSV lines that could not be parsed as rows (reported, never used)."""
    import duckdb

    from crmtool.identity.load import load_without_erased
    from crmtool.io.readers import ensure_readable, file_format

    ensure_readable(path)
    if file_format(path) == "parquet":
        from crmtool.io.gate import readable

        p = sql_str(readable(ws.con, path))  # kept in the sandbox while the view lives
        try:
            ws.con.execute(
                f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT file_row_number + 1 AS _row, "
                f"* EXCLUDE (file_row_number) FROM read_parquet({p}, file_row_number = true)"
            )
            ws.con.execute(f"DESCRIBE {table}").fetchall()
        except duckdb.Error as exc:
            raise InputError(f"{path}: cannot read Parquet ({str(exc).splitlines()[0]})") from None
        return 0
    # a temporary table, with people erased earlier already gone: the input never reaches the workspace file
    return len(load_without_erased(ws, path, table, temp=True, read=read).parse_rejects)


def _drop_inputs(ws: Workspace) -> None:
    for t in (*INPUT_TABLES, "seg_in_audience"):
        _drop(ws, t)


def _drop(ws: Workspace, name: str) -> None:
    kinds = ws.con.execute(
        "SELECT 'VIEW' FROM duckdb_views() WHERE view_name = ? UNION ALL "
        "SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = ?",
        [name, name],
    ).fetchall()
    for (kind,) in kinds:
        ws.con.execute(f"DROP {kind} IF EXISTS {name}")


def _check_consent_column(ws: Workspace, spec: SegmentsSpec, cc: CustomerColumns) -> None:
    if cc.consent is None:
        return
    cols = {r[0] for r in ws.con.execute("DESCRIBE seg_customers").fetchall()}
    if cc.consent not in cols:
        raise InputError(
            f"the customers file has no consent column '{cc.consent}'",
            f"map it under inputs.customers.consent in {spec.file}, or set it to null to build "
            f"send lists without a consent check",
        )


def _prepare(
    ws: Workspace,
    customers: Path,
    spec: SegmentsSpec,
    orders: Path | None,
    events: Path | None,
    as_of: date,
    progress: Progress | None,
    read: ReadOptions | None = None,
) -> tuple[InputStats, CustomerColumns, dict[str, str]]:
    stats, cc, orders, events, unparseable = _read_inputs(ws, customers, spec, orders, events, progress, read)
    prepare_orders(ws.con, "seg_in_orders" if orders else None, spec, as_of, stats)
    prepare_events(ws.con, "seg_in_events" if events else None, spec, as_of, stats)
    for what, n in unparseable.items():
        if n:
            stats.skipped.setdefault(what, {})["unparseable_csv_row"] = n
    with _engine_errors(spec):
        columns = build_features(ws.con, spec, as_of, cc, stats)
        if progress:
            progress("evaluating segments")
        membership.evaluate(ws.con, spec, columns, as_of)
    return stats, cc, columns


def _read_inputs(ws: Workspace, customers: Path, spec: SegmentsSpec, orders: Path | None, events: Path | None,
                 progress: Progress | None, read: ReadOptions | None,
                 ) -> tuple[InputStats, CustomerColumns, Path | None, Path | None, dict[str, int]]:
    """Load the inputs, register the macros and build ``seg_customers``; returns the stats so far, the
    customer columns, the orders and events files used and the unparseable CSV lines per input."""
    orders = orders or spec.orders.path
    events = events or spec.events.path
    stats = InputStats()
    unparseable = {"customers": _load(ws, customers, "seg_in_customers", read)}
    if orders:
        unparseable["orders"] = _load(ws, orders, "seg_in_orders")
    if events:
        unparseable["events"] = _load(ws, events, "seg_in_events")
    if progress:
        progress("computing features")
    register_macros(ws.con, spec)
    cc = prepare_customers(ws.con, "seg_in_customers", spec, stats)
    _check_consent_column(ws, spec, cc)
    return stats, cc, orders, events, unparseable


def _prepare_on_spark(ws: Workspace, customers: Path, spec: SegmentsSpec, orders: Path | None, events: Path | None,
                      as_of: date, progress: Progress | None, read: ReadOptions | None, spark_master: str | None,
                      ) -> tuple[InputStats, CustomerColumns, dict[str, str], dict[str, list[str]], list[str]]:
    """:func:`_prepare`, :func:`_output_columns` and :func:`build_exclusions` with the aggregates,
    features, matches and status computed on Spark (:mod:`crmtool.segments.on_spark`); the
    exclusions are computed here first and staged there."""
    from crmtool.segments.on_spark import evaluate_on_spark

    stats, cc, orders, events, unparseable = _read_inputs(ws, customers, spec, orders, events, progress, read)
    notes = build_exclusions(ws, spec, cc)
    out_cols: dict[str, list[str]] = {}

    def output_columns(columns: dict[str, str]) -> dict[str, list[str]]:
        out_cols.update(_output_columns(spec, cc, columns))
        return out_cols

    if progress:
        progress("evaluating segments on Spark")
    with _engine_errors(spec):
        columns = evaluate_on_spark(ws.con, spec, as_of, cc, stats, spark_master, out_columns=output_columns,
                                    orders="seg_in_orders" if orders else None,
                                    events="seg_in_events" if events else None)
    for what, n in unparseable.items():
        if n:
            stats.skipped.setdefault(what, {})["unparseable_csv_row"] = n
    return stats, cc, columns, out_cols, notes


@contextmanager
def _engine_errors(spec: SegmentsSpec) -> Iterator[None]:
    """A user SQL expression that binds but fails on the data (e.g. a cast) is an error, not a bug."""
    import duckdb

    try:
        yield
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        raise EngineError(f"DuckDB refused a step built from {spec.file}: {first}",
                          "check the SQL expressions of features and segments against the data") from None


def _safe_id(fmt: str) -> str:
    """``customer_id`` with spreadsheet formulas neutralised (CSV only), as :func:`write_query` does.

    The other columns of holdouts/memberships are values crmtool writes itself (segment names,
    status), so only the id needs the (costly) check on files of millions of rows."""
    from crmtool.io.writers import neutralised_sql

    if fmt != "csv":
        return "customer_id"
    return f"{neutralised_sql('customer_id')} AS customer_id"


def _output_columns(spec: SegmentsSpec, cc: CustomerColumns, columns: dict[str, str]) -> dict[str, list[str]]:
    default = list(spec.output_columns) or ["customer_id", *(c for c in (cc.email, cc.phone) if c)]
    problems = []
    out = {}
    for seg in spec.segments:
        cols = list(seg.columns) or default
        if "customer_id" not in cols:
            cols = ["customer_id", *cols]
        for c in cols:
            if c not in columns:
                problems.append(
                    (
                        seg.loc,
                        f"segment '{seg.name}': output column '{c}' is not a feature or customer column",
                    )
                )
        out[seg.name] = cols
    if problems:
        raise ConfigError(problems)
    return out


def segment(
    ws: Workspace,
    customers: Path,
    spec: SegmentsSpec | Path,
    *,
    out_dir: Path,
    orders: Path | None = None,
    events: Path | None = None,
    as_of: date | None = None,
    fmt: str | None = None,
    progress: Progress | None = None,
    output: OutputOptions | None = None,
    read: ReadOptions | None = None,
    engine: str = "duckdb",
    spark_master: str | None = None,
) -> SegmentResult:
    """Evaluate every segment, write send lists, holdouts, memberships and a summary; record history
    (``output``: how the CSV files look, see :class:`crmtool.io.writers.OutputOptions`; ``read``:
    what the user says about the customers file, e.g. its xlsx sheet; ``engine="spark"``: the
    aggregates, features, conditions, holdouts and status run on Spark, ``spark_master`` or
    ``SPARK_REMOTE`` or local[2], see :mod:`crmtool.segments.on_spark`)."""
    spec = _spec(spec)
    if engine not in ("duckdb", "spark"):
        raise UsageError(f"engine must be duckdb or spark, not {engine!r}")
    if engine == "spark":
        from crmtool.segments.on_spark import refuse_unported

        refuse_unported(spec)  # before anything is read or a JVM started
    as_of = as_of or spec.as_of or date.today()
    fmt = fmt or spec.output_format or "csv"
    if fmt not in ("csv", "parquet", "xlsx"):
        raise UsageError(f"unknown output format {fmt!r}", "use csv, parquet or xlsx")
    run = ws.start_run("segment")
    inputs = [p for p in (customers, orders or spec.orders.path, events or spec.events.path) if p]
    digests = FileDigests([p for p in inputs if p.is_file()])  # read beside the evaluation, for the manifest
    # and the step's inputs
    try:
        with run.timed("evaluate"):
            if engine == "spark":
                stats, cc, columns, out_cols, notes = _prepare_on_spark(ws, customers, spec, orders, events, as_of,
                                                                        progress, read, spark_master)
            else:
                stats, cc, columns = _prepare(ws, customers, spec, orders, events, as_of, progress, read)
                out_cols = _output_columns(spec, cc, columns)
                notes = build_exclusions(ws, spec, cc)
                membership.apply_status(ws.con, spec)
        rows = membership.counts(ws.con, spec, stats.customers)
        prev = membership.previous_run(ws.con)
        if prev:
            membership.compare_with(ws.con, prev, rows)
        excluded = _excluded_customers(ws)
        if progress:
            progress("writing")
        with run.timed("write"):
            outputs, removed = _write_and_publish(ws, run, spec, out_cols, out_dir, fmt, output, digests,
                                                  as_of, stats.customers)
        result = SegmentResult(run.run_id, as_of, stats.customers, stats, rows, excluded, notes, prev, outputs,
                               removed)
        _write_summary_and_manifest(run, result, inputs, Path(spec.file), out_dir, digests)
        ws.finish_run(
            run, Status.PASS, 0, {"segments": len(rows), "customers": stats.customers, "as_of": str(as_of)}
        )
        return result
    except Exception as exc:
        ws.finish_run(run, "error", int(getattr(exc, "exit_code", 2)), {"error": type(exc).__name__})
        raise
    finally:
        digests.close()
        _drop_inputs(ws)


def _excluded_customers(ws: Workspace) -> dict[str, int]:
    """Customers left out of some send list, by reason (from ``seg_status``)."""
    excluded = ws.con.execute(
        "SELECT reason, count(DISTINCT customer_id) FROM seg_status WHERE reason IS NOT NULL "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return {str(k): int(v) for k, v in excluded}


def _write_and_publish(ws: Workspace, run: Run, spec: SegmentsSpec, out_cols: dict[str, list[str]], out_dir: Path,
                       fmt: str, output: OutputOptions | None, digests: FileDigests, as_of: date,
                       customers: int) -> tuple[dict[str, Path], list[str]]:
    """Write the send lists, holdouts and memberships into a staging folder of ``out_dir``, record the
    membership history, then move every file into place together and remove the send lists of
    segments the file no longer has; returns the files by kind and the names of the removed lists.

    A run that fails or is killed before the move leaves ``out_dir`` as it was: never today's lists
    beside yesterday's."""
    from crmtool.io.stage import staged

    with staged(out_dir) as stage:
        outputs = _write_lists(ws, spec, out_cols, stage.path, fmt, output, digests, publish_to=out_dir)
        with run.timed("history"):
            membership.record(ws.con, run.run_id, as_of, spec.file, customers)
        for path in outputs.values():  # the digests read the staged files: done before they move
            digests.sha256(path)
        stage.publish(outputs.values())
    return outputs, _remove_stale_lists(ws, out_dir, outputs)


def _remove_stale_lists(ws: Workspace, out_dir: Path, outputs: dict[str, Path]) -> list[str]:
    """Remove the send lists in ``out_dir/segments/`` that an earlier segment run wrote (registered, same
    bytes) for a segment this run has not: an old list left beside today's could be mailed."""
    from crmtool.io.readers import file_sha256

    folder = (out_dir / "segments").resolve()
    current = {p.resolve() for p in outputs.values()}
    removed: list[str] = []
    for rec in ws.outputs(kinds=("segment",)):
        path = rec.path.resolve()
        if path.parent != folder or path in current or not path.is_file():
            continue
        if rec.sha256 and file_sha256(path) == rec.sha256:  # a file someone changed since is left alone
            path.unlink()
            removed.append(path.name)
    return sorted(set(removed))


def _write_lists(ws: Workspace, spec: SegmentsSpec, out_cols: dict[str, list[str]], out_dir: Path, fmt: str,
                 output: OutputOptions | None, digests: FileDigests | None = None,
                 publish_to: Path | None = None) -> dict[str, Path]:
    """Write one send list per segment, the holdouts and the memberships into ``out_dir``; return them
    by kind, named as in ``publish_to`` when given (each file handed to ``digests`` once written,
    under that name)."""
    from crmtool.io.writers import write_query

    final = publish_to or out_dir
    outputs: dict[str, Path] = {}

    def done(kind: str, target: Path) -> None:
        outputs[kind] = final / target.relative_to(out_dir)
        if digests:
            digests.add(target, key=outputs[kind])

    for seg in spec.segments:
        target = out_dir / "segments" / f"{seg.name}.{fmt}"
        cols = ", ".join(f"f.{ident(c)}" for c in out_cols[seg.name])
        write_query(
            ws.con,
            f"SELECT {cols} FROM seg_status s JOIN seg_features f USING (customer_id) "
            f"WHERE s.idx = {seg.index} AND s.status = 'send' "
            f"ORDER BY f.customer_id",
            target,
            fmt,
            options=output,
        )
        done(f"segment:{seg.name}", target)
    holdouts, memberships = out_dir / f"holdouts.{fmt}", out_dir / f"memberships.{fmt}"
    cid = _safe_id(fmt)
    # seg_status is stored in this order (membership.apply_status): sorted again only when DuckDB
    # may return a table's rows in another order
    order = "" if membership.stored_in_order(ws.con) else " ORDER BY idx, seg_status.customer_id"
    write_query(
        ws.con,
        f"SELECT {cid}, segment, holdout FROM seg_status WHERE status = 'holdout'{order}",
        holdouts,
        fmt,
        options=output,
        neutralise_formulas=False,
    )
    done("holdouts", holdouts)
    write_query(
        ws.con,
        f"SELECT {cid}, segment, holdout IS NOT NULL AS in_holdout, holdout, status, "
        f"reason FROM seg_status{order}",
        memberships,
        fmt,
        options=output,
        neutralise_formulas=False,
    )
    done("memberships", memberships)
    return outputs


def _write_summary_and_manifest(run: Run, result: SegmentResult, inputs: list[Path], spec_file: Path,
                                out_dir: Path, digests: FileDigests) -> None:
    """Write ``segments.summary.json``, record the step's files and metrics, then write the manifest
    (the digests of the inputs and lists from ``digests``)."""
    from crmtool.io.writers import write_text_atomic

    outputs = result.outputs
    outputs["summary"] = out_dir / "segments.summary.json"
    body = result.as_dict()
    body["timings"] = run.timings
    write_text_atomic(outputs["summary"], json.dumps(body, indent=2, sort_keys=True, default=str) + "\n")
    wrote_entries = [file_entry(p, digests.sha256(p)) for p in outputs.values()]
    input_entries = [file_entry(p, digests.sha256(p)) for p in inputs if p.exists()]
    read_entries = input_entries + ([file_entry(spec_file)] if spec_file.exists() else [])
    _record_metrics(run.step, result, input_entries, dict(zip(outputs, wrote_entries, strict=True)))
    outputs["manifest"] = out_dir / "segments.manifest.json"
    write_manifest(outputs["manifest"], {
        **common_keys(run, "segment", inputs=read_entries, outputs=wrote_entries, status=Status.PASS),
        "as_of": result.as_of.isoformat(), **run.step.manifest(),
    })


def _record_metrics(step: Step, result: SegmentResult, read: list[dict[str, Any]],
                    wrote: dict[str, dict[str, Any]]) -> None:
    """Customers, and per segment its size, share, holdout, sends and entered/exited (``read``: the
    manifest entries of the inputs, with their digests)."""
    for entry in read:
        if Path(entry["path"]).is_file():
            step.input(Path(entry["path"]), sha256=entry["sha256"])
    for kind, entry in wrote.items():
        step.output(kind.split(":")[0], Path(entry["path"]), sha256=entry["sha256"])
    step.metric("customers", result.customers)
    for c in result.segments:
        step.metric("segment_size", c.members, c.name)
        step.metric("segment_share", c.share, c.name)
        step.metric("holdout_size", c.holdout, c.name)
        step.metric("segment_send", c.send, c.name)
        step.metric("segment_excluded", c.excluded, c.name)
        if c.entered is not None:
            step.metric("segment_entered", c.entered, c.name)
            step.metric("segment_exited", c.exited, c.name)
    step.counts({"excluded_customers": result.excluded_customers})


def preview(
    ws: Workspace,
    customers: Path,
    spec: SegmentsSpec | Path,
    *,
    orders: Path | None = None,
    events: Path | None = None,
    as_of: date | None = None,
    progress: Progress | None = None,
) -> PreviewResult:
    """Sizes and the overlap matrix of the segments; writes nothing, records nothing."""
    spec = _spec(spec)
    as_of = as_of or spec.as_of or date.today()
    try:
        stats, cc, _ = _prepare(ws, customers, spec, orders, events, as_of, progress)
        build_exclusions(ws, spec, cc)
        membership.apply_status(ws.con, spec, sort=False)  # nothing is written: no send list reads it
        rows = membership.counts(ws.con, spec, stats.customers)
        return PreviewResult(as_of, stats.customers, stats, rows, membership.overlap(ws.con, spec))
    finally:
        _drop_inputs(ws)


def diff(ws: Workspace, since: str | None = None, run: str | None = None) -> DiffResult:
    """Who entered and exited each segment between two recorded runs (see :func:`membership.diff`)."""
    return membership.diff(ws, since, run)


def write_diff(ws: Workspace, result: DiffResult, target: Path, fmt: str = "csv", *,
               output: OutputOptions | None = None) -> Path:
    """The detailed list (segment, customer_id, change) of a diff, sorted (``output``: how the CSV looks)."""
    from crmtool.io.writers import write_query

    write_query(ws.con, result.changes_query, target, fmt, options=output)
    return target


@dataclass
class AudienceResult:
    platform: str
    segment: str
    source: Path
    output: Path
    rows: int
    emails: int
    phones: int
    skipped_emails: int  # present but not an address
    skipped_phones: int  # present but not a valid number
    withheld: int = 0  # erased, suppressed or bounced since the send list was written: left out

    @property
    def status(self) -> Status:
        """A run that returns has done its work (errors raise)."""
        return Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in self.__dict__.items()}


def _unneutralised(value: str) -> str:
    """Undo the apostrophe that CSV writing puts before a cell starting like a formula (``'-a@b.es``)."""
    return value[1:] if value[:1] == "'" and value[1:2] in ("=", "+", "-", "@", "\t", "\r") else value


def export_audience(
    ws: Workspace,
    name: str,
    platform: str,
    *,
    source_dir: Path,
    out: Path | None = None,
    spec: SegmentsSpec | Path | None = None,
    output: OutputOptions | None = None,
) -> AudienceResult:
    """Hash the send list ``source_dir/segments/<name>.<csv|parquet>`` for ``platform`` (meta | google).

    Output: CSV with ``email`` and ``phone`` columns holding lower-case hex SHA-256 of the values
    normalised as the platform documents (see :mod:`crmtool.segments.audience`); a customer with
    neither is left out and counted. ``output`` sets the CSV's delimiter, encoding and BOM (the
    hashes are never formulas, so they are written as they are).
    """
    from crmtool.identity.keys import IdentityColumns
    from crmtool.identity.registers import drop_flagged
    from crmtool.io.writers import write_query
    from crmtool.segments.audience import PLATFORMS

    if platform not in PLATFORMS:
        raise UsageError(f"unknown platform {platform!r}", f"use one of {', '.join(PLATFORMS)}")
    s = _spec(spec) if spec is not None else None
    email_col = (s.customers.email if s else None) or "email"
    phone_col = (s.customers.phone if s else None) or "phone"
    region = s.customers.phone_region if s else "ES"
    source = _send_list(source_dir, name)
    _load(ws, source, "seg_in_audience")
    ws.con.execute("CREATE OR REPLACE TEMP TABLE seg_aud_src AS SELECT * FROM seg_in_audience")
    try:
        cols = {r[0] for r in ws.con.execute("DESCRIBE seg_aud_src").fetchall()}
        # whoever was erased, suppressed or bounced since the send list was written is left out
        withheld = drop_flagged(ws, "seg_aud_src", IdentityColumns(
            "customer_id" if "customer_id" in cols else None,
            [email_col] if email_col in cols else [], [phone_col] if phone_col in cols else []), region)
        if email_col not in cols and phone_col not in cols:
            raise InputError(
                f"{source}: has neither '{email_col}' nor '{phone_col}' columns",
                "add them to output.columns in segments.yaml",
            )
        parts = [(col, kind) for col, kind in ((email_col, "email"), (phone_col, "phone")) if col in cols]
        for col, kind in parts:
            _hash_values(ws, col, kind, platform, region)
        counts = _build_audience(ws, parts, "a.customer_id" if "customer_id" in cols else "a._row")
        skipped = _skipped_values(ws, parts)
        target = out or source_dir / "audiences" / f"{name}.{platform}.csv"
        write_query(
            ws.con,
            "SELECT email, phone FROM seg_audience WHERE email IS NOT NULL OR phone IS NOT NULL ORDER BY __o",
            target,
            "csv",
            options=output,
            neutralise_formulas=False,
        )
        run = ws.start_run("audience")
        ws.register_output(run, f"audience:{platform}", target, counts[0])  # erasure rewrites it too
        ws.finish_run(run, Status.PASS, 0, {"segment": name, "platform": platform, "rows": counts[0]})
        return AudienceResult(platform, name, source, target, counts[0], counts[1], counts[2],
                              skipped.get("email", 0), skipped.get("phone", 0), withheld)
    finally:
        _drop(ws, "seg_aud_src")
        _drop(ws, "seg_in_audience")


def _send_list(source_dir: Path, name: str) -> Path:
    """The send list of segment ``name`` under ``source_dir/segments`` (CSV first, then Parquet)."""
    for p in (source_dir / "segments" / f"{name}.csv", source_dir / "segments" / f"{name}.parquet"):
        if p.exists():
            return p
    raise InputError(
        f"no send list for segment {name!r} in {source_dir / 'segments'}",
        "run 'crmtool segment ... --out DIR' first and pass that DIR with --from",
    )


def _hash_values(ws: Workspace, col: str, kind: str, platform: str, region: str) -> None:
    """Hash each distinct non-blank value of ``col`` once, into ``seg_aud_<kind>`` (raw value ``v``, hash ``h``)."""
    import pyarrow as pa

    from crmtool.db import fetch_arrow
    from crmtool.segments.audience import hash_email, hash_phone

    raw = (
        fetch_arrow(
            ws.con,
            f"SELECT DISTINCT CAST({ident(col)} AS VARCHAR) AS v FROM seg_aud_src "
            f"WHERE nullif(trim(CAST({ident(col)} AS VARCHAR)), '') IS NOT NULL",
        )
        .column("v")
        .to_pylist()
    )
    plain = [_unneutralised(v) for v in raw]
    hashed = [hash_email(v, platform) if kind == "email" else hash_phone(v, platform, region) for v in plain]
    ws.con.register(f"__aud_{kind}", pa.table({"v": raw, "h": hashed}))
    ws.con.execute(f"CREATE OR REPLACE TEMP TABLE seg_aud_{kind} AS SELECT * FROM __aud_{kind}")
    ws.con.unregister(f"__aud_{kind}")


def _build_audience(ws: Workspace, parts: list[tuple[str, str]], order: str) -> tuple[int, int, int]:
    """Join the hashes back onto the send list as ``seg_audience``; return (rows kept, emails, phones)."""
    sel = []
    joins = []
    for col, kind in parts:
        sel.append(f"{kind[0]}.h AS {kind}")
        joins.append(f"LEFT JOIN seg_aud_{kind} {kind[0]} ON {kind[0]}.v = CAST(a.{ident(col)} AS VARCHAR)")
    for kind in ("email", "phone"):
        if kind not in [k for _, k in parts]:
            sel.append(f"NULL::VARCHAR AS {kind}")
    ws.con.execute(
        f"CREATE OR REPLACE TEMP TABLE seg_audience AS SELECT {', '.join(sel)}, "
        f"{order} AS __o FROM seg_aud_src a {' '.join(joins)}"
    )
    counts = ws.con.execute(
        "SELECT count(*) FILTER (WHERE email IS NOT NULL OR phone IS NOT NULL), "
        "count(email), count(phone) FROM seg_audience"
    ).fetchall()[0]
    return int(counts[0]), int(counts[1]), int(counts[2])


def _skipped_values(ws: Workspace, parts: list[tuple[str, str]]) -> dict[str, int]:
    """Per kind, the rows whose value is present but could not be hashed (not an address or number)."""
    skipped = {}
    for col, kind in parts:
        skipped[kind] = int(
            ws.con.execute(
                f"SELECT count(*) FROM seg_aud_src a LEFT JOIN seg_aud_{kind} x "
                f"ON x.v = CAST(a.{ident(col)} AS VARCHAR) "
                f"WHERE nullif(trim(CAST(a.{ident(col)} AS VARCHAR)), '') IS NOT NULL AND x.h IS NULL"
            ).fetchall()[0][0]
        )
    return skipped
