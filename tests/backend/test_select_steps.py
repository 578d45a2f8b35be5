"""The SELECT-step plan (crmtool.backend.checks) on the DuckDB backend against the engine itself:
the same outcomes and the same violation rows, with no Spark involved."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmtool.backend.checks import CHANGES, PORTED_KINDS, VIOLATIONS, run_checks
from crmtool.backend.duckdb_backend import DuckDBBackend
from crmtool.engine import CHANGES as ENGINE_CHANGES
from crmtool.engine import VIOLATIONS as ENGINE_VIOLATIONS
from crmtool.engine import run_rules
from crmtool.errors import ConfigError
from crmtool.io.readers import load_file
from crmtool.kinds.unicode_nfc import nfc
from crmtool.rulefile import load_rules
from crmtool.workspace import Workspace

from .conftest import outcome_rows

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"


@pytest.mark.parametrize("rules", [[RULES / "20-checks.yaml"], [RULES / "10-normalise.yaml", RULES / "20-checks.yaml"],
                                   [RULES / name for name in ("10-normalise.yaml", "20-checks.yaml",
                                                              "25-email-risk.yaml")]])
def test_select_steps_agree_with_the_engine_row_for_row(ws: Workspace, rules: list[Path]) -> None:
    ruleset = load_rules(rules)
    load_file(ws.con, ROOT / "examples" / "clientes.csv", "data_c")
    engine = run_rules(ws.con, "data_c", ruleset, work_table="work_c")
    expected = ws.con.execute(f"SELECT rule, _row, reason, reject FROM {ENGINE_VIOLATIONS} ORDER BY ALL").fetchall()
    steps = run_checks(DuckDBBackend(ws.con), "data_c", ruleset, keep_results=True)
    got = ws.con.execute(f"SELECT rule, _row, reason, reject FROM {VIOLATIONS} ORDER BY ALL").fetchall()
    assert outcome_rows(steps) == outcome_rows(engine)
    assert (steps.rows, steps.rejected_rows) == (engine.rows, engine.rejected_rows)
    assert got == expected
    assert len(got) >= 50  # the fixture exercises the checks: many rows fail
    # every change, step by step, with the values before and after (what clean's audit records)
    changes = "SELECT rule, _row, \"column\", old, new FROM {} ORDER BY ALL"
    assert ws.con.execute(changes.format(CHANGES)).fetchall() == ws.con.execute(
        changes.format(ENGINE_CHANGES)).fetchall()


def test_unported_kinds_are_one_configuration_error_naming_each(ws: Workspace,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # every kind runs off DuckDB now: a kind taken off the list stands for the next new one
    monkeypatch.setattr("crmtool.backend.checks.PORTED_KINDS", PORTED_KINDS - {"email_risk", "unique"})
    ruleset = load_rules([RULES])
    load_file(ws.con, ROOT / "examples" / "clientes.csv", "data_c")
    with pytest.raises(ConfigError) as caught:
        run_checks(DuckDBBackend(ws.con), "data_c", ruleset)
    kinds = sorted({msg.split("kind '")[1].split("'")[0] for _loc, msg in caught.value.problems})
    assert kinds == ["email_risk", "unique"]
    assert all(str(loc).startswith(str(RULES)) and loc.line > 0 for loc, _msg in caught.value.problems)


def test_map_values_runs_the_function_once_per_value_in_batches(ws: Workspace) -> None:
    seen: list[str] = []

    def shout(v: str) -> tuple[str, bool]:
        seen.append(v)
        return v.upper(), len(v) > 1

    backend = DuckDBBackend(ws.con)
    backend.create_table("vals", "SELECT * FROM (VALUES ('a'), ('bb'), ('a'), (NULL)) v(x)")
    backend.map_values("mapped", "SELECT DISTINCT x AS v FROM vals WHERE x IS NOT NULL", shout,
                       [("up", "VARCHAR"), ("long", "BOOLEAN")])
    assert backend.fetch("SELECT * FROM mapped ORDER BY value") == [("a", "A", False), ("bb", "BB", True)]
    assert sorted(seen) == ["a", "bb"]
    assert backend.columns("mapped") == [("value", "VARCHAR"), ("up", "VARCHAR"), ("long", "BOOLEAN")]


_NFC = duckdb.connect()


@given(st.text(st.characters(max_codepoint=0x2FFF, exclude_categories=("Cs", "Cc")), max_size=12)
       | st.sampled_from(["Jose\u0301", "Mu\u0308ller", "A\u030a", "n\u0303u\u0301", "\u1e9b\u0323"]))
def test_python_nfc_is_duckdbs_nfc_normalize(value: str) -> None:
    """unicode_nfc off DuckDB maps values with Python's NFC: the same text nfc_normalize gives."""
    assert nfc(value) == _NFC.execute("SELECT nfc_normalize(?)", [value]).fetchone()
