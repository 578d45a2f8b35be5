"""The data model of a loaded rule set: :class:`RuleSet` and its :class:`DatasetSpec` (no loading here).

:mod:`crmtool.rulefile` builds these from YAML files; features (dedupe, privacy, ...) read them.
Features import this module, never the loader, so no import points from a feature up into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.kinds.base import RuleSpec, Threshold

if TYPE_CHECKING:
    from crmtool.errors import Location
    from crmtool.yamlspec import YamlDoc


@dataclass(frozen=True)
class DatasetSpec:
    key: str | None = None
    personal_data: tuple[str, ...] = ()
    not_personal: tuple[str, ...] = ()
    loc: Location | None = None  # where the dataset block was written
    #: unparseable rows tolerated (a count or a share of the file's rows); above it the run fails
    max_unparseable: Threshold = field(default_factory=Threshold)


@dataclass
class RuleSet:
    """Everything the rule files declare, with the files they came from."""

    files: list[Path] = field(default_factory=list)
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    rules: list[RuleSpec] = field(default_factory=list)
    #: raw sections for other features: name -> (document, data); parsed by their owners
    sections: dict[str, tuple[YamlDoc, Any]] = field(default_factory=dict)
