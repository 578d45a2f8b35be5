"""Names of the workspace tables a dedupe run keeps for ``explain`` and incremental runs."""

from __future__ import annotations

PREP, PAIRS, MODEL, RECORDS, GOLDEN, CUTS = (
    "dedupe_prep",
    "dedupe_pairs",
    "dedupe_model",
    "dedupe_records",
    "dedupe_golden",
    "dedupe_cuts",
)
