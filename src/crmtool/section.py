"""What a rule-file section is: a name, its JSON Schema, its parser and a one-line description.

A section (``dedupe``, ``consent``, ``retention``) is a top-level block of a rule file owned by a
feature, not by the rule engine. The feature declares its :class:`Section` beside its schema; the
registry :mod:`crmtool.sections` lists them and the loader (:mod:`crmtool.rulefile`) reads that
registry. This module is on the ground floor: it imports nothing from crmtool at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crmtool.ruleset import RuleSet


@dataclass(frozen=True)
class Section:
    """One rule-file section: what it is called, how it is checked and who turns it into a spec."""

    #: the top-level key in a rule file
    name: str
    #: the JSON Schema the section's value must pass (part of ``crmtool rules schema``)
    schema: Mapping[str, Any]
    #: turns the section of a loaded rule set into the feature's spec (None or empty when absent);
    #: raises ConfigError with every problem. A small function that imports the feature's parser
    #: when called, so that loading rule files imports no feature module.
    parse: Callable[[RuleSet], object]
    #: one line for people: what the section declares
    description: str
