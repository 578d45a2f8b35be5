"""Campaigns: who was targeted, in which arm, who was held out; results against the holdout.

Modules: :mod:`store` (workspace tables), :mod:`assign` (sticky arms from a segment run),
:mod:`measure` (orders per arm in DuckDB), :mod:`stats` (intervals and tests on aggregates),
:mod:`results` (comparisons, warnings, winner), :mod:`api` (what the CLI calls), :mod:`render`.
"""
