"""Entry points that take rule-file paths for the features whose core takes loaded rule files.

The loader (:mod:`crmtool.rulefile`) sits above the features: ``dedupe`` and ``privacy`` take a
loaded :class:`~crmtool.ruleset.RuleSet`, and these functions load the files first (configuration
errors before any data is read). They are part of the public API (``crmtool.dedupe_file``,
``crmtool.apply_retention``) and what the CLI and the pipeline call.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.rulefile import load_rules

if TYPE_CHECKING:
    from crmtool.dedupe.api import DedupeResult
    from crmtool.dedupe.spec import DedupeSpec
    from crmtool.privacy.retention import RetentionResult
    from crmtool.workspace import Workspace


def dedupe_file(ws: Workspace, input_path: Path, rules: list[Path], out_dir: Path | None,
                **kwargs: Any) -> DedupeResult:
    """:func:`crmtool.dedupe.entry.dedupe_input` with the rule files at ``rules`` (a folder is read whole)."""
    from crmtool.dedupe.entry import dedupe_input

    return dedupe_input(ws, input_path, load_rules(rules), out_dir, **kwargs)


def dedupe_spec(rules: list[Path]) -> DedupeSpec:
    """The ``dedupe`` section of the rule files at ``rules``; a ConfigError when none has one."""
    from crmtool.dedupe.spec import required_spec

    return required_spec(load_rules(rules))


def apply_retention(ws: Workspace, rules: list[Path], **kwargs: Any) -> RetentionResult:
    """:func:`crmtool.privacy.retention.apply_retention_rules` with the rule files at ``rules``."""
    from crmtool.privacy.retention import apply_retention_rules

    return apply_retention_rules(ws, load_rules(rules), **kwargs)
