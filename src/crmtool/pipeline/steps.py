"""The built-in step kinds: each calls the library function its command calls.

``kpis`` is here too; ``diff`` and ``report`` plug in with one :func:`register` call each where
they live.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.pipeline.registry import StepContext, StepKind, StepOutcome, register
from crmtool.status import Status

if TYPE_CHECKING:
    from crmtool.io.writers import OutputOptions

#: how the CSV files of a step look, when the step says so itself (the names of the command options;
#: otherwise the run's: ``crmtool run --csv-dialect excel-es``)
OUTPUT_PARAMS = {"csv_dialect": "text", "delimiter": "text", "decimal_comma": "boolean", "bom": "boolean",
                 "encoding": "text"}


def _output(ctx: StepContext, p: dict[str, Any]) -> OutputOptions | None:
    """The step's own output options over the run's: a ``csv_dialect`` starts from that dialect,
    single settings replace the run's one by one."""
    given = {k: p[k] for k in OUTPUT_PARAMS if k in p}
    if not given:
        return ctx.output
    from crmtool.io.writers import OutputOptions

    base = ctx.output or OutputOptions()
    dialect = given.pop("csv_dialect", None)
    if dialect is not None:
        return OutputOptions.build(str(dialect), neutralise_formulas=base.neutralise_formulas, **given)
    settings = {"delimiter": base.delimiter, "decimal_comma": base.decimal_comma, "encoding": base.encoding,
                "bom": base.bom, **given}
    return OutputOptions.build(None, neutralise_formulas=base.neutralise_formulas, **settings)


def _clean(ctx: StepContext, p: dict[str, Any]) -> StepOutcome:
    from crmtool.api import clean

    result = clean(ctx.ws, p["input"], [p["rules"]], ctx.folder, fmt=p.get("format"),
                   audit_log=ctx.audit_log, progress=ctx.progress, output=_output(ctx, p))
    c = result.manifest["counts"]
    note = (f"created a new key for keyed hashes at {result.key_created} (owner-only); keep it safe"
            if result.key_created else "")
    return StepOutcome(Status.FAIL if result.failed else Status.PASS, result.run_id, dict(result.outputs),
                       {k: c[k] for k in ("rows_in", "rows_out", "rejected") if k in c}, note)


def _emails(ctx: StepContext, p: dict[str, Any]) -> StepOutcome:
    from crmtool.emails.run import classify_file

    report = classify_file(ctx.ws, p["input"], column=p.get("column", "email"), out_dir=ctx.folder,
                           fmt=p.get("format"), output=_output(ctx, p))
    outputs = {"emails": Path(report.output)} if report.output else {}
    invalid = report.by_status.get("invalid", {}).get("rows", 0)
    return StepOutcome(Status.PASS, report.run_id, outputs, {"addresses": report.addresses, "invalid_rows": invalid})


def _dedupe(ctx: StepContext, p: dict[str, Any]) -> StepOutcome:
    from crmtool.api import apply_fixes
    from crmtool.rule_paths import dedupe_file

    result = dedupe_file(ctx.ws, p["input"], [p["rules"]], ctx.folder, audit_log=ctx.audit_log,
                         progress=ctx.progress, output=_output(ctx, p), apply_fixes=apply_fixes)
    return StepOutcome(Status.PASS, result.run_id, dict(result.outputs),
                       {"duplicate_clusters": result.clusters.multi, "merges": result.merges})


def _suppress(ctx: StepContext, p: dict[str, Any]) -> StepOutcome:
    from crmtool.privacy.suppress import import_suppressions

    result = import_suppressions(ctx.ws, p["input"], p.get("kind", "unsubscribe"), source=p.get("source"),
                                 audit_log=ctx.audit_log)
    return StepOutcome(Status.PASS, result.run_id, {}, {"suppressions_added": sum(result.added.values())})


def _segment(ctx: StepContext, p: dict[str, Any]) -> StepOutcome:
    from crmtool.segments.api import segment

    result = segment(ctx.ws, p["input"], p["segments"], out_dir=ctx.folder, orders=p.get("orders"),
                     events=p.get("events"), as_of=ctx.day, fmt=p.get("format"), progress=ctx.progress,
                     output=_output(ctx, p))
    return StepOutcome(Status.PASS, result.run_id, dict(result.outputs),
                       {"customers": result.customers, "segments": len(result.segments)})


def _export(ctx: StepContext, p: dict[str, Any]) -> StepOutcome:
    from crmtool.privacy.export import export

    target = ctx.folder / str(p.get("file") or f"export.{p.get('format') or 'csv'}")
    if target.resolve().parent != ctx.folder.resolve():
        from crmtool.errors import UsageError

        raise UsageError(f"export file {p.get('file')!r} must be a plain file name (it goes to the run folder)")
    result = export(ctx.ws, p["input"], p["policy"], target, fmt=p.get("format"), as_of=ctx.day,
                    output=_output(ctx, p))
    return StepOutcome(Status.PASS, result.run_id, {"export": result.output, "manifest": result.manifest},
                       {"exported_rows": result.rows})


def _kpis(ctx: StepContext, p: dict[str, Any]) -> StepOutcome:
    from crmtool.io.writers import write_text_atomic
    from crmtool.kpis import load_kpis, run_kpis, to_json

    spec = load_kpis(p["kpis"])
    report = run_kpis(ctx.ws, spec, since_days=int(p.get("since_days", 90)), by=str(p.get("by", "day")))
    target = ctx.folder / "kpis.json"
    write_text_atomic(target, to_json(report))
    failing = [k.name for k in report.kpis if k.status is Status.FAIL]
    return StepOutcome(report.status, report.run_id, {"kpis": target},
                       {"kpis": len(report.kpis), "kpis_failing": len(failing)},
                       ("KPIs off target or anomalous: " + ", ".join(failing)) if failing else "")


register(StepKind("clean", {"input": "input", "rules": "path", "format": "text", **OUTPUT_PARAMS}, ("input", "rules"),
                  _clean,
                  "apply the rules; writes the clean and rejects files (and dedupe outputs)"))
register(StepKind("emails", {"input": "input", "column": "text", "format": "text", **OUTPUT_PARAMS}, ("input",),
                  _emails,
                  "classify every distinct address"))
register(StepKind("dedupe", {"input": "input", "rules": "path", **OUTPUT_PARAMS}, ("input", "rules"), _dedupe,
                  "clusters, golden records and pairs to review"))
register(StepKind("suppress", {"input": "input", "kind": "text", "source": "text"}, ("input",), _suppress,
                  "import a suppression list (unsubscribes, complaints)"))
register(StepKind("segment", {"input": "input", "segments": "path", "orders": "input", "events": "input",
                              "format": "text", **OUTPUT_PARAMS}, ("input", "segments"), _segment,
                  "segments, holdouts and memberships as of the run's date"))
register(StepKind("export", {"input": "input", "policy": "path", "file": "text", "format": "text", **OUTPUT_PARAMS},
                  ("input", "policy"), _export, "an export for a team, following a policy"))
register(StepKind("kpis", {"kpis": "path", "since_days": "integer", "by": "text"}, ("kpis",), _kpis,
                  "KPIs against their targets and history; fails when one is off"))


def _diff(ctx: StepContext, p: dict[str, Any]) -> StepOutcome:
    from crmtool.changes import diff_exports

    result = diff_exports(ctx.ws, p["old"], p["new"], key=str(p["key"]), out_dir=ctx.folder / "diff",
                          output=_output(ctx, p))
    return StepOutcome(result.status, result.run_id, dict(result.outputs), dict(result.counts))


def _report(ctx: StepContext, p: dict[str, Any]) -> StepOutcome:
    from crmtool.htmlreport import build_report

    result = build_report(ctx.ws, ctx.folder / "report.html", since=str(p.get("since", "90d")), kpis=p.get("kpis"))
    return StepOutcome(result.status, result.run_id, {"report": result.path}, {"charts": result.charts})


register(StepKind("diff", {"old": "input", "new": "input", "key": "text", **OUTPUT_PARAMS}, ("old", "new", "key"),
                  _diff, "added, removed and changed records between two exports"))
register(StepKind("report", {"since": "text", "kpis": "path"}, (), _report,
                  "the HTML report of the workspace's history"))
