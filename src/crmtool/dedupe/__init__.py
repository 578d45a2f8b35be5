"""Deduplication: blocking, comparisons, Fellegi–Sunter scoring, clusters and golden records.

The public entry points live in :mod:`crmtool.dedupe.api` (``dedupe``, ``explain``); the rule-file
section is parsed by :mod:`crmtool.dedupe.spec`. This package imports nothing heavy at import time.
"""
