"""``crmtool emails``: classify the addresses of one column of an export and write the result.

One row per *distinct* address (``email, normalized, status, reasons, suggestion, risk, tags,
rows``), sorted by address so reruns are byte-identical; the summary holds counts only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.db import scalar
from crmtool.emails.classify import REASONS, ClassifyOptions, classify_values, reason_name
from crmtool.errors import InputError
from crmtool.status import Status

if TYPE_CHECKING:
    from crmtool.io.readers import ReadOptions
    from crmtool.io.writers import OutputOptions
    from crmtool.steps import Step
    from crmtool.workspace import Workspace

STATUSES = ("valid", "risky", "unknown", "invalid")


@dataclass
class EmailsReport:
    """Counts of one ``emails`` run (no addresses): per status and per reason, rows and addresses."""

    run_id: str
    input: str
    column: str
    rows: int
    missing: int
    addresses: int
    domains: int
    by_status: dict[str, dict[str, int]]
    by_reason: dict[str, dict[str, int]]
    output: str | None
    mx: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        """A run that returns has done its work (errors raise)."""
        return Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "input": self.input,
            "column": self.column,
            "rows": self.rows,
            "rows_without_address": self.missing,
            "addresses": self.addresses,
            "domains": self.domains,
            "by_status": self.by_status,
            "by_reason": self.by_reason,
            "output": self.output,
            "mx": self.mx,
            "timings": self.timings,
        }


def _find_column(columns: list[str], wanted: str) -> str:
    if wanted in columns:
        return wanted
    folded = [c for c in columns if c.lower().strip() == wanted.lower().strip()]
    if len(folded) == 1:
        return folded[0]
    raise InputError(
        f"column '{wanted}' is not in the data (columns: {', '.join(columns)})",
        "name the address column with --column",
    )


def history_ready(ws: Workspace) -> None:
    """Register ``crm_token`` when the workspace holds history to match (not otherwise: no key file)."""
    if ws.table_exists("email_bounces") or ws.table_exists("privacy_suppressions"):
        ws.hasher  # noqa: B018 - registers the crm_token macro


def classify_file(
    ws: Workspace,
    path: Path,
    *,
    column: str = "email",
    out_dir: Path | None = None,
    fmt: str | None = None,
    options: ClassifyOptions | None = None,
    output: OutputOptions | None = None,
    read: ReadOptions | None = None,
) -> EmailsReport:
    """Load ``path``, classify the distinct addresses of ``column``, write ``out_dir/emails.<fmt>``
    (``output``: how the CSV looks; ``read``: overrides of the detected delimiter, encoding, sheet)."""
    from crmtool.identity.load import load_without_erased
    from crmtool.io.writers import write_query
    from crmtool.sqltext import ident
    from crmtool.workspace import dataset_name

    con = ws.con
    run = ws.start_run("emails")
    try:
        # people erased earlier are dropped in memory, before the table reaches the workspace
        loaded = load_without_erased(ws, path, f"data_{dataset_name(path)}", read=read)
        col = _find_column(loaded.columns, column)
        history_ready(ws)
        src = ident(loaded.table)
        value = f"CAST({ident(col)} AS VARCHAR)"
        con.execute(f"CREATE OR REPLACE TEMP TABLE __em_rows AS SELECT _row, {value} AS value FROM {src}")
        con.execute(
            "CREATE OR REPLACE TEMP VIEW __em_values AS SELECT DISTINCT value FROM __em_rows "
            "WHERE value IS NOT NULL AND trim(value) <> ''"
        )
        result = classify_values(con, "__em_values", options)
        out = result.table
        con.execute(f"""CREATE OR REPLACE TEMP TABLE __em_final AS
            SELECT r.value AS email, r.normalized, r.status, r.reasons, r.suggestion, r.risk, r.tags,
                   n.rows FROM {out} r JOIN (SELECT value, count(*) AS rows FROM __em_rows GROUP BY value) n
                   ON n.value = r.value""")
        rows = loaded.rows
        missing = int(
            scalar(con, "SELECT count(*) FROM __em_rows WHERE value IS NULL OR trim(value) = ''") or 0
        )
        by_status = {s: {"addresses": 0, "rows": 0} for s in STATUSES}
        for s, a, n in con.execute(
            "SELECT status, count(*), sum(rows) FROM __em_final GROUP BY 1"
        ).fetchall():
            by_status[s] = {"addresses": int(a), "rows": int(n)}
        by_reason: dict[str, dict[str, int]] = {}
        for r, a, n in con.execute(
            "SELECT split_part(x, ':', 1), count(*), sum(rows) FROM "
            "(SELECT unnest(reasons) AS x, rows FROM __em_final) GROUP BY 1"
        ).fetchall():
            by_reason[r] = {"addresses": int(a), "rows": int(n)}
        by_reason = {k: by_reason[k] for k in sorted(by_reason, key=lambda k: REASONS.index(reason_name(k)))}
        target = None
        if out_dir is not None:
            file_fmt = fmt or ("parquet" if loaded.format == "parquet" else "csv")
            target = out_dir / f"emails.{file_fmt}"
            if file_fmt in ("csv", "xlsx"):
                query = (
                    "SELECT email, normalized, status, array_to_string(reasons, ';') AS reasons, suggestion, "
                    "risk, array_to_string(tags, ';') AS tags, rows FROM __em_final ORDER BY email"
                )
            else:
                query = "SELECT * FROM __em_final ORDER BY email"
            write_query(con, query, target, file_fmt, options=output)
        report = EmailsReport(
            run.run_id,
            str(path),
            col,
            rows,
            missing,
            result.addresses,
            result.domains,
            by_status,
            by_reason,
            str(target) if target else None,
            result.mx.as_dict() if result.mx else None,
            result.timings,
        )
    except Exception:
        ws.finish_run(run, "error", 2, {})
        raise
    _record_metrics(run.step, report, path, target)
    ws.finish_run(run, "ok", 0, {k: v for k, v in report.as_dict().items() if k not in ("input", "output")})
    return report


def _record_metrics(step: Step, report: EmailsReport, path: Path, target: Path | None) -> None:
    """Status mix (rows and share per status), bounce rate, and the input and output files."""
    step.input(path, report.rows)
    if target is not None:
        step.output("emails", target, report.addresses)
    step.metric("rows_in", report.rows)
    step.metric("rows_without_address", report.missing)
    step.metric("addresses", report.addresses)
    step.metric("domains", report.domains)
    with_address = report.rows - report.missing
    for status, n in report.by_status.items():
        step.metric("email_status_rows", n["rows"], status)
        step.share("email_status_share", n["rows"], with_address, status)
    for reason, n in report.by_reason.items():
        step.metric("email_reason_rows", n["rows"], reason)
    bounced = sum(n["rows"] for r, n in report.by_reason.items() if "bounced" in r)
    step.share("bounce_rate", bounced, with_address)
