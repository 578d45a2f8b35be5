"""CLI commands of the dedupe feature: ``dedupe`` and ``explain`` (thin, over :mod:`crmtool.dedupe.api`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crmtool.cli.common import (
    FileFormat,
    FormatOpt,
    OutputFormat,
    Ui,
    WorkspaceLockOptions,
    WorkspaceOptions,
    cli_command,
    emit,
    finish,
    result_table,
)
from crmtool.cli.core_cmd import EngineOpt, SparkMasterOpt
from crmtool.errors import ExitCode
from crmtool.io.readers import ReadOptions
from crmtool.io.writers import OutputOptions

if TYPE_CHECKING:
    from crmtool.dedupe.api import DedupeResult
    from crmtool.dedupe.explain import Explanation

RulesOpt = Annotated[
    list[Path], typer.Option("--rules", "-r", help="Rule file or folder with a dedupe section.")
]


SPLIT_WORDS = {
    "chaining": "the chaining guard (its cluster held a pair below split_below, or a vetoed or no-match "
    "pair, so the cluster was split around its best-connected record)",
    "oversized_cluster": "the cluster size cap (max_cluster_size): the cluster was dissolved",
}


def register(app: typer.Typer) -> None:
    """Add this feature's commands to ``app``."""
    app.command("dedupe")(dedupe)
    app.command("explain")(explain)


def _suggest(ui: Ui, input: Path, fmt: OutputFormat, where: WorkspaceOptions) -> ExitCode:
    """Print the dedupe section suggested from the profile of ``input`` (YAML, or JSON with --format json)."""
    from crmtool.dedupe.entry import suggest_file
    from crmtool.dedupe.suggest import suggest_yaml
    from crmtool.result import Fields

    with where.open() as ws:
        section = suggest_file(ws, input)
    return finish(ui, Fields({"dedupe": section}), fmt, lambda: emit(ui, suggest_yaml(section)))


def _print_result(ui: Ui, result: DedupeResult) -> None:
    """Print a dedupe run for people: blocking counts, clusters, the guard, review and the files written."""
    if result.normalised:
        ui.out.print(f"normalised first by: {', '.join(result.normalised)}")
    for b in result.blocking:
        state = "SKIPPED" if b.skipped_rule else f"{b.new_pairs} new"
        ui.out.print(f"  blocking {b.rule:20} {b.pairs:>10} pairs ({state})")
    c = result.clusters
    ui.out.print(
        f"rows {result.rows}, candidate pairs {result.candidate_pairs}, clusters {c.clusters} "
        f"({c.multi} with duplicates holding {c.records_in_multi} records, largest {c.largest}), "
        f"merges {result.merges}, to review {result.review_pairs}"
    )
    if c.split_clusters or c.dissolved_clusters:
        ui.out.print(
            f"chaining guard: {c.split_clusters} clusters split, {c.dissolved_clusters} dissolved"
        )
    rv = result.review
    if rv.pairs > rv.written:
        omitted = ", ".join(f"{k} {v}" for k, v in rv.omitted_by_reason.items())
        ui.out.print(f"review: {rv.written} of {rv.pairs} pairs written ({rv.clusters} clusters), "
                     f"most valuable first; not written: {omitted} (raise --review-limit to see more)")
    for name, path in result.outputs.items():
        ui.out.print(f"  {name:9} {path}")
    ui.out.print(f"run {result.run_id}: pass")


@cli_command
def dedupe(
    ui: Ui,
    input: Annotated[
        Path, typer.Argument(help="Export to deduplicate (CSV, Parquet or xlsx).", show_default=False)
    ],
    rules: RulesOpt = [Path("rules")],  # noqa: B006 - typer needs a literal default
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for clusters, golden, review and audit log.")
    ] = Path("out"),
    decisions: Annotated[
        Path | None,
        typer.Option(
            "--decisions",
            help="Pairs decided by a person (id_l, id_r, "
            "decision = match | no-match), e.g. a filled-in review.csv.",
        ),
    ] = None,
    incremental: Annotated[
        bool,
        typer.Option(
            "--incremental",
            help="Match only new or changed rows against the previous run's records kept in the workspace.",
        ),
    ] = False,
    suggest: Annotated[
        bool,
        typer.Option("--suggest", help="Print a dedupe section written from the profile of INPUT (YAML) and stop."),
    ] = False,
    normalise: Annotated[
        bool,
        typer.Option(
            "--normalise/--no-normalise",
            help="Run the rule files' fixes on the compared columns of a work copy first (default), or "
            "compare the values as they are (already cleaned data).",
        ),
    ] = True,
    review_limit: Annotated[
        int, typer.Option("--review-limit", min=1, help="Pairs written to the review file, most valuable first.")
    ] = 200,
    file_format: Annotated[
        FileFormat | None, typer.Option("--output-format", help="csv, parquet or xlsx (default: as input).")
    ] = None,
    output: OutputOptions = OutputOptions(),
    read: ReadOptions = ReadOptions(),
    audit_log: Annotated[
        Path | None,
        typer.Option(help="Audit log folder (default: the workspace's <stem>.audit/; OUT/crmtool.audit for :memory:)."),
    ] = None,
    fmt: FormatOpt = OutputFormat.text,
    where: WorkspaceOptions = WorkspaceOptions(),
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
) -> ExitCode:
    """Find the same person across rows: write clusters, golden records, pairs to review and audit entries."""
    from crmtool.api import apply_fixes
    from crmtool.cli.core_cmd import _engine_usage
    from crmtool.rule_paths import dedupe_file

    _engine_usage(engine, spark_master)
    if suggest:
        return _suggest(ui, input, fmt, where)
    with (
        where.open() as ws,
        ui.progress("dedupe") as progress,
    ):
        result = dedupe_file(
            ws,
            input,
            rules,
            out,
            fmt=file_format.value if file_format else None,
            decisions=decisions,
            audit_log=audit_log,
            incremental=incremental,
            normalise=normalise,
            apply_fixes=apply_fixes,
            review_limit=review_limit,
            progress=progress,
            warn=ui.warn,
            output=output,
            read=read,
            engine=engine,
            spark_master=spark_master,
        )
    return finish(ui, result, fmt, lambda: _print_result(ui, result))


@cli_command
def explain(
    ui: Ui,
    record_ids: Annotated[
        list[str],
        typer.Argument(
            help="One record id (its cluster and best pairs) or two (why they were or were not matched).",
            show_default=False,
        ),
    ],
    rules: RulesOpt = [Path("rules")],  # noqa: B006
    fmt: FormatOpt = OutputFormat.text,
    where: WorkspaceLockOptions = WorkspaceOptions(),
) -> ExitCode:
    """Explain the last dedupe run: each comparison of two records, its level and its weight."""
    from crmtool.dedupe.api import explain as explain_pair
    from crmtool.errors import UsageError
    from crmtool.rule_paths import dedupe_spec

    if not 1 <= len(record_ids) <= 2:
        raise UsageError("explain takes one or two record ids")
    spec = dedupe_spec(rules)
    with where.open() as ws:
        exp = explain_pair(ws, spec, *record_ids)
    return finish(ui, exp, fmt, lambda: _print_explanation(ui, exp))


def _print_explanation(ui: Ui, exp: Explanation) -> None:
    """One record's cluster, best pairs and cuts; or each comparison of two records and the verdict."""
    if exp.model_warning:
        ui.warn(exp.model_warning)
    if len(exp.record_ids) == 1:
        ui.out.print(f"record {exp.record_ids[0]}: cluster {exp.cluster_id}")
        for other, p in exp.neighbours:
            ui.out.print(f"  {other:20} match probability {p:.4f}")
        for other, reason, trigger in exp.cuts:
            why = f"; {trigger}" if trigger else ""
            ui.out.print(f"cut from {other}: {SPLIT_WORDS.get(reason, reason)}{why}", soft_wrap=True)
        for other, p, vetoes in exp.vetoed_pairs:
            ui.out.print(f"vetoed with {other} (match probability {p:.4f}): {'; '.join(vetoes)}", soft_wrap=True)
        return
    table = result_table("comparison", "column", "level", "weight", right={"weight"})
    table.add_row("(prior)", "", "", f"{exp.prior_weight:+.2f}")
    for c in exp.comparisons:
        name = f"{c.name} (home)" if c.household else c.name
        table.add_row(name, c.column, c.level or "(missing)", f"{c.weight:+.2f}")
    ui.out.print(table)
    if exp.household_weight is not None and exp.household_cap is not None:
        capped = min(exp.household_weight, exp.household_cap)
        ui.out.print(f"household evidence: agreements {exp.household_weight:+.2f} bits, counted "
                     f"{capped:+.2f} (cap {exp.household_cap:.2f}: one home, one fact)")
    for veto in exp.vetoes:
        ui.out.print(f"vetoed by: {veto}")
    if exp.split_by:
        why = f"; {exp.split_trigger}" if exp.split_trigger else ""
        ui.out.print(f"split by: {SPLIT_WORDS.get(exp.split_by, exp.split_by)}{why}", soft_wrap=True)
    verdict = "same cluster" if exp.same_cluster else "different clusters"
    how = f"blocking rule {exp.blocking_rule}" if exp.blocking_rule else "no blocking rule (scored now)"
    ui.out.print(
        f"match weight {exp.match_weight:+.2f}, probability {exp.match_probability:.4f} "
        f"(threshold {exp.threshold:g}); candidate pair: {how}; "
        f"decision: {exp.decision or 'none'}; veto: {'yes' if exp.vetoed else 'no'}; {verdict}",
        soft_wrap=True,
    )
