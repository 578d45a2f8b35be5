"""A retention run opens the audit log only when it has its entries: one that fails on the way
(here a DELETE the database refuses) leaves every byte of the log as it was."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from crmtool.audit import verify_log
from crmtool.rule_paths import apply_retention
from crmtool.workspace import Workspace


def _rules(tmp_path: Path) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text("version: 1\ndataset:\n  key: customer_id\n  personal_data: [name]\n"
                    "retention:\n  - name: old\n    inactive_for: 3y\n    activity_columns: [last_order]\n"
                    "    action: delete\n", encoding="utf-8")
    return path


def _snapshot(log: Path) -> dict[str, bytes]:
    return {str(p.relative_to(log)): p.read_bytes() for p in sorted(log.rglob("*")) if p.is_file()}


def test_a_failing_retention_leaves_the_log_untouched(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    with Workspace(tmp_path / "ws.duckdb") as ws:
        ws.con.execute("CREATE TABLE clean_c (_row INTEGER PRIMARY KEY, customer_id VARCHAR, name VARCHAR, "
                       "last_order VARCHAR)")
        ws.con.execute("INSERT INTO clean_c VALUES (1, 'C1', 'Ana', '2020-01-01'), (2, 'C2', 'Bob', '2025-06-01')")
        # nothing old yet: a sealed run with no deletion
        first = apply_retention(ws, [rules], out_dir=tmp_path / "out", as_of=date(2022, 1, 1))
        log = Path(first.audit_path)
        before = _snapshot(log)
        assert verify_log(log, ws.hasher).runs == 1
        # a table that still refers to row 1: the DELETE of the retention run fails half-way
        ws.con.execute("CREATE TABLE orders (row_ref INTEGER REFERENCES clean_c(_row))")
        ws.con.execute("INSERT INTO orders VALUES (1)")
        with pytest.raises(duckdb.ConstraintException):
            apply_retention(ws, [rules], out_dir=tmp_path / "out", as_of=date(2026, 11, 1))
        assert _snapshot(log) == before  # no pending note, no aborted run for the next one to record
        # and the next successful run starts cleanly
        ws.con.execute("DROP TABLE orders")
        apply_retention(ws, [rules], out_dir=tmp_path / "out", as_of=date(2026, 11, 1))
        result = verify_log(log, ws.hasher)
        assert result.ok and result.runs == 2 and result.pending == []
        from crmtool.audit import iter_entries

        assert not [e for e in iter_entries(log) if e["type"] == "aborted"]
