"""crmtool: keep a customer database clean, lawful and segmented.

The names in :data:`__all__` are the public Python API: every command of the CLI is a thin layer
over one of them. They are imported on first use, so ``import crmtool`` stays light::

    from pathlib import Path
    import crmtool

    with crmtool.open_workspace("crm.duckdb") as ws:
        result = crmtool.clean(ws, Path("clientes.csv"), [Path("rules")], Path("out"))
        print(result.status, result.rows_out, result.rejected)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # the workspace and the shared vocabulary
    "Workspace": "crmtool.workspace",
    "open_workspace": "crmtool.workspace",
    "Status": "crmtool.status",
    "CommandResult": "crmtool.result",
    "CrmToolError": "crmtool.errors",
    "OutputOptions": "crmtool.io.writers",
    "ReadOptions": "crmtool.io.readers",
    # rules: check and clean one export
    "load_checked_rules": "crmtool.api",
    "validate": "crmtool.api",
    "clean": "crmtool.api",
    "CleanResult": "crmtool.api",
    "CheckReport": "crmtool.check_report",
    # people: deduplication and data protection
    "dedupe_file": "crmtool.rule_paths",
    "import_suppressions": "crmtool.privacy.suppress",
    "list_suppressions": "crmtool.privacy.suppress_manage",
    "remove_suppressions": "crmtool.privacy.suppress_manage",
    "erase": "crmtool.privacy.erase.run",
    "apply_retention": "crmtool.rule_paths",
    "subject_export": "crmtool.privacy.subject",
    # segments and campaigns
    "load_segments": "crmtool.segments.spec",
    "segment": "crmtool.segments.api",
    "export_audience": "crmtool.segments.api",
    "start_campaign": "crmtool.campaigns.api",
    "campaign_results": "crmtool.campaigns.api",
    # runs over time
    "load_pipeline": "crmtool.pipeline.spec",
    "run_pipeline": "crmtool.pipeline.runner",
    "load_kpis": "crmtool.kpis.spec",
    "run_kpis": "crmtool.kpis.evaluate",
    "diff_exports": "crmtool.changes",
}

__all__ = [
    "CheckReport",
    "CleanResult",
    "CommandResult",
    "CrmToolError",
    "OutputOptions",
    "ReadOptions",
    "Status",
    "Workspace",
    "__version__",
    "apply_retention",
    "campaign_results",
    "clean",
    "dedupe_file",
    "diff_exports",
    "erase",
    "export_audience",
    "import_suppressions",
    "list_suppressions",
    "load_checked_rules",
    "load_kpis",
    "load_pipeline",
    "load_segments",
    "open_workspace",
    "remove_suppressions",
    "run_kpis",
    "run_pipeline",
    "segment",
    "start_campaign",
    "subject_export",
    "validate",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors only
    from crmtool.api import CleanResult, clean, load_checked_rules, validate
    from crmtool.campaigns.api import campaign_results, start_campaign
    from crmtool.changes import diff_exports
    from crmtool.check_report import CheckReport
    from crmtool.errors import CrmToolError
    from crmtool.io.readers import ReadOptions
    from crmtool.io.writers import OutputOptions
    from crmtool.kpis.evaluate import run_kpis
    from crmtool.kpis.spec import load_kpis
    from crmtool.pipeline.runner import run_pipeline
    from crmtool.pipeline.spec import load_pipeline
    from crmtool.privacy.erase.run import erase
    from crmtool.privacy.subject import subject_export
    from crmtool.privacy.suppress import import_suppressions
    from crmtool.privacy.suppress_manage import list_suppressions, remove_suppressions
    from crmtool.result import CommandResult
    from crmtool.rule_paths import apply_retention, dedupe_file
    from crmtool.segments.api import export_audience, segment
    from crmtool.segments.spec import load_segments
    from crmtool.status import Status
    from crmtool.workspace import Workspace, open_workspace


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'crmtool' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
