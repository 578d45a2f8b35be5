"""``email_risk`` in the engine: rules share one classification, a later table adds only new values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from crmtool.backend.checks import VIOLATIONS as STEP_VIOLATIONS
from crmtool.backend.checks import run_checks
from crmtool.backend.duckdb_backend import DuckDBBackend
from crmtool.emails import lists as email_lists
from crmtool.emails.classify import classify_list
from crmtool.engine import VIOLATIONS, run_rules
from crmtool.rulefile import load_rules
from crmtool.workspace import Workspace
from sqlrecording import Recording

RULES = """
rules:
  - {name: trim, kind: trim, column: email}
  - {name: bad, kind: email_risk, column: email, reasons: [bad_tld]}
  - {name: odd, kind: email_risk, column: email, reasons: [disposable, typo_domain], action: fix,
     fix_reasons: [typo_domain]}
  - {name: roles, kind: email_risk, column: email, reasons: [role]}
"""
EMAILS = [" ana@gmial.com", "info@empresa.es", "x@mailinator.com", "bob@gmail.com", None, "ana@gmail.con",
          "ventas@gmial.com"]


def test_the_checks_classify_only_the_values_the_fix_did_not_see(ws: Workspace, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    loads = []
    real_load = email_lists.EmailLists.load.__func__  # type: ignore[attr-defined]

    def counting_load(cls: type, *args: Any, **kwargs: Any) -> Any:
        loads.append(args)
        return real_load(cls, *args, **kwargs)

    monkeypatch.setattr(email_lists.EmailLists, "load", classmethod(counting_load))
    ws.con.execute("CREATE TABLE data_t AS SELECT row_number() OVER () AS _row, e AS email FROM "
                   "(SELECT unnest(?) AS e)", [EMAILS])
    rules = tmp_path / "r.yaml"
    rules.write_text(RULES, encoding="utf-8")
    con = Recording(ws.con)
    result = run_rules(con, "data_t", load_rules(rules))  # type: ignore[arg-type]

    work = dict(ws.con.execute(f"SELECT _row, email FROM {result.work_table}").fetchall())
    assert work[1] == "ana@gmail.com" and work[7] == "ventas@gmail.com"  # the typo fix applied
    # the lists are read once; the fix's values are classified once, the checks add only the two
    # addresses the fix wrote
    assert len(loads) == 1
    classified = [s for s in con.sql if s.startswith("CREATE OR REPLACE TEMP TABLE __email_risk_values")]
    assert len(classified) == 2 and "ANTI JOIN" in classified[1]

    # every check says what a classification of the final values from scratch says
    fresh = classify_list(ws.con, [v for v in work.values() if v])
    failed = {}
    for rule, row in ws.con.execute(f"SELECT DISTINCT rule, _row FROM {VIOLATIONS}").fetchall():
        failed.setdefault(rule, set()).add(row)
    for index, reasons in ((1, {"bad_tld"}), (2, {"disposable", "typo_domain"}), (3, {"role"})):
        expected = {row for row, v in work.items()
                    if v and reasons & {r.split(":")[0] for r in fresh[v]["reasons"]}}
        assert failed.get(index, set()) == expected
    # row 7 is a value only the checks saw (ventas@gmail.com, written by the fix): still a role
    assert failed[2] == {3} and failed[3] == {2, 7}


def test_a_second_table_with_no_new_value_classifies_nothing(ws: Workspace, tmp_path: Path) -> None:
    ws.con.execute("CREATE TABLE data_t AS SELECT row_number() OVER () AS _row, e AS email FROM "
                   "(SELECT unnest(?) AS e)", [["bob@gmail.com", "info@empresa.es"]])
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - {name: odd, kind: email_risk, column: email, reasons: [typo_domain], "
                     "action: fix}\n  - {name: roles, kind: email_risk, column: email, reasons: [role]}\n",
                     encoding="utf-8")
    con = Recording(ws.con)
    result = run_rules(con, "data_t", load_rules(rules))  # type: ignore[arg-type]
    assert [o.failed for o in result.outcomes] == [0, 1]
    assert len([s for s in con.sql if s.startswith("CREATE OR REPLACE TEMP TABLE __email_risk_values")]) == 2
    assert len([s for s in con.sql if "_result AS" in s]) == 1  # one classification: nothing new to add


def test_a_fix_with_where_rewrites_in_place_and_the_checks_see_the_new_values(ws: Workspace, tmp_path: Path) -> None:
    """A `where` fix updates the working table in place: the same table, new values. The checks
    after it must classify those (before, they reused the fix's classification and missed them)."""
    ws.con.execute("CREATE TABLE data_t AS SELECT row_number() OVER () AS _row, e AS email, c AS country FROM "
                   "(SELECT unnest(?) AS e, unnest(?) AS c)",
                   [["info@gmial.com", "ana@gmial.com", "ventas@hotmial.com", "bob@gmail.com"],
                    ["ES", "PT", "ES", "ES"]])
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - {name: odd, kind: email_risk, column: email, reasons: [typo_domain], "
                     "action: fix, where: \"country = 'ES'\"}\n"
                     "  - {name: roles, kind: email_risk, column: email, reasons: [role]}\n", encoding="utf-8")
    result = run_rules(ws.con, "data_t", load_rules(rules))
    work = dict(ws.con.execute(f"SELECT _row, email FROM {result.work_table}").fetchall())
    assert work == {1: "info@gmail.com", 2: "ana@gmial.com", 3: "ventas@hotmail.com", 4: "bob@gmail.com"}
    roles = {row for (row,) in ws.con.execute(f"SELECT DISTINCT _row FROM {VIOLATIONS} WHERE rule = 1").fetchall()}
    assert roles == {1, 3}
    assert [o.failed for o in result.outcomes] == [0, 2]
    # the backend steps (what Spark runs) select instead of updating, and agree
    steps = run_checks(DuckDBBackend(ws.con), "data_t", load_rules(rules), keep_results=True,
                       home=duckdb.connect())
    assert [(o.fixed, o.failed) for o in steps.outcomes] == [(o.fixed, o.failed) for o in result.outcomes]
    assert ws.con.execute(f"SELECT DISTINCT _row FROM {STEP_VIOLATIONS} WHERE rule = 1 ORDER BY 1").fetchall() \
        == [(1,), (3,)]
