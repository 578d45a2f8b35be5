"""Published JSON Schemas of what crmtool writes for machines (``crmtool rules schema results``).

``RESULTS_SCHEMA_VERSION`` is carried by every JSON result (``schema_version``): it goes up only
when a field changes meaning or is removed; new optional fields keep the version.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

RESULTS_SCHEMA_VERSION = 1


def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``<name>.schema.json`` shipped in this package."""
    text = resources.files("crmtool").joinpath("schemas", f"{name}.schema.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data
