"""The ways into deduplication from outside the workspace: a file (:func:`dedupe_input`, with the
rule files' normalisers first), a rule set's ``dedupe`` section after ``clean``
(:func:`dedupe_ruleset`), and a suggested section for a file (:func:`suggest_file`). Each ends in
:func:`crmtool.dedupe.api.dedupe`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from crmtool.dedupe.api import DedupeResult, dedupe
from crmtool.errors import UsageError
from crmtool.sqltext import ident

if TYPE_CHECKING:
    import duckdb

    from crmtool.dedupe.spec import DedupeSpec
    from crmtool.io.readers import ReadOptions
    from crmtool.ruleset import RuleSet
    from crmtool.workspace import Workspace

__all__ = ["ApplyFixes", "dedupe_input", "dedupe_ruleset", "normalise_first", "suggest_file"]


class ApplyFixes(Protocol):
    """Runs the fixes of ``ruleset`` over ``table`` into the work copy ``work_table`` and leaves nothing
    else behind (:func:`crmtool.api.apply_fixes`). The engine that runs rules is a floor above the
    rule kinds, so the caller hands this function in rather than dedupe importing it."""

    def __call__(self, con: duckdb.DuckDBPyConnection, table: str, ruleset: RuleSet, work_table: str) -> object: ...


def normalise_first(ws: Workspace, ruleset: RuleSet, spec: DedupeSpec, table: str, apply_fixes: ApplyFixes | None,
                    warn: Callable[[str], None] | None = None) -> tuple[str, list[str]]:
    """Run the rule set's fixes (``action: fix``) on the columns the dedupe section reads, with
    ``apply_fixes``, into a work copy; return (the table to deduplicate, the rules applied).

    Dedupe compares values as the normalisers leave them: a mojibake first name or ``16783115-S`` vs
    ``16783115S`` must not decide a match. Fixes of other columns are left to ``clean``; a fix naming a
    column the data lacks is skipped with a warning (``clean`` would refuse the file). Fixes to run and
    no ``apply_fixes`` is a usage error (never a silent skip)."""
    from crmtool.ruleset import RuleSet as RuleSetType

    have = {r[0] for r in ws.con.execute(f"DESCRIBE {ident(table)}").fetchall()}
    wanted = set(spec.columns())
    fixes = [r for r in ruleset.rules if r.action == "fix" and set(r.columns) & wanted]
    usable = [r for r in fixes if set(r.columns) <= have]
    skipped = [r.name for r in fixes if r not in usable]
    if skipped and warn:
        warn(f"normalisers skipped (they name columns this file lacks): {', '.join(skipped)}")
    if not usable:
        return table, []
    if apply_fixes is None:
        raise UsageError(
            f"dedupe: the rules fix compared columns ({', '.join(r.name for r in usable)}) but no function "
            "to apply them was given",
            "pass apply_fixes=crmtool.api.apply_fixes, or normalise=False to compare the values as they are",
        )
    work = f"dedupe_norm_{table}"
    apply_fixes(ws.con, table, RuleSetType(files=ruleset.files, dataset=ruleset.dataset, rules=usable), work)
    return work, [r.name for r in usable]


def dedupe_input(
    ws: Workspace,
    input_path: Path,
    ruleset: RuleSet,
    out_dir: Path | None,
    *,
    fmt: str | None = None,
    read: ReadOptions | None = None,
    normalise: bool = True,
    apply_fixes: ApplyFixes | None = None,
    **kwargs: Any,
) -> DedupeResult:
    """Load ``input_path`` into the workspace and deduplicate it with the ``dedupe`` section of the
    loaded rule files ``ruleset`` (``read`` overrides the detected delimiter, encoding or xlsx sheet).
    :func:`crmtool.dedupe_file` is the same from rule-file paths.

    With ``normalise`` (the default) the fixes the rule files declare run first on the compared
    columns of a work copy, by ``apply_fixes`` (:func:`crmtool.api.apply_fixes`; see
    :func:`normalise_first`)."""
    from crmtool.dedupe.spec import required_spec
    from crmtool.identity.load import load_without_erased
    from crmtool.workspace import dataset_name

    spec = required_spec(ruleset)  # configuration errors before any data is read
    if kwargs.get("engine") == "spark":
        from crmtool.dedupe.on_spark import refuse_unported

        refuse_unported(spec, incremental=bool(kwargs.get("incremental")))
    table = f"data_{dataset_name(input_path)}"
    loaded = load_without_erased(ws, input_path, table, read=read)  # erased people never reach the workspace
    if loaded.parse_rejects and kwargs.get("warn"):
        kwargs["warn"](f"{len(loaded.parse_rejects)} unparseable lines skipped")
    out_fmt = fmt or ("parquet" if loaded.format == "parquet" else "csv")
    applied: list[str] = []
    if normalise:
        table, applied = normalise_first(ws, ruleset, spec, table, apply_fixes, kwargs.get("warn"))
    try:
        return dedupe(ws, table, spec, out_dir, fmt=out_fmt, normalised_by=tuple(applied), **kwargs)
    finally:
        if applied:  # the work copy: the run's outputs and dedupe_* tables hold what later steps read
            ws.con.execute(f"DROP TABLE IF EXISTS {ident(table)}")


def suggest_file(ws: Workspace, input_path: Path) -> dict[str, Any]:
    """Load ``input_path`` and return :func:`crmtool.dedupe.suggest.suggest_dedupe_section` of it."""
    from crmtool.dedupe.suggest import suggest_dedupe_section
    from crmtool.io.readers import load_file
    from crmtool.workspace import dataset_name

    table = f"data_{dataset_name(input_path)}"
    load_file(ws.con, input_path, table)
    return suggest_dedupe_section(ws.con, table)


def dedupe_ruleset(
    ws: Workspace, ruleset: RuleSet, table: str, out_dir: Path | None, **kwargs: Any
) -> DedupeResult | None:
    """Deduplicate ``table`` when the loaded rule files have a ``dedupe`` section, else return None.

    The hook for ``clean``: call it after the rules ran and the clean table was written (and after the
    clean run's audit entries were sealed, so that the dedupe run continues the same hash chain), with
    ``table`` the cleaned table (``clean_<dataset>``) and the same ``fmt`` / ``audit_log`` as ``clean``.
    """
    from crmtool.dedupe.spec import spec_from_ruleset

    spec = spec_from_ruleset(ruleset)
    if spec is None:
        return None
    return dedupe(ws, table, spec, out_dir, **kwargs)
