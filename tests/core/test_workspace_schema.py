"""The workspace schema version: old workspaces migrate, newer ones are refused."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import duckdb
import pytest

from crmtool.errors import InputError
from crmtool.workspace import MIGRATIONS, SCHEMA_VERSION, Workspace, schema_version

FIXTURES = Path(__file__).parent / "fixtures"


def _main_workspace(tmp_path: Path) -> Path:
    """A workspace file written by main's code before schema versions existed (commit d1db4a4:
    ``crmtool validate examples/clientes.csv --rules rules -w main.duckdb``)."""
    target = tmp_path / "main.duckdb"
    with gzip.open(FIXTURES / "workspace-main-d1db4a4.duckdb.gz", "rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def test_workspace_made_by_main_opens_and_migrates(tmp_path: Path) -> None:
    path = _main_workspace(tmp_path)
    con = duckdb.connect(str(path))
    assert not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'crm_schema'"
                           ).fetchall()[0][0]
    old_runs = con.execute("SELECT run_id, command, status FROM crm_runs").fetchall()
    con.close()
    assert old_runs and old_runs[0][1] == "validate"
    with Workspace(path) as ws:
        assert schema_version(ws.con) == SCHEMA_VERSION
        versions = [r[0] for r in ws.con.execute("SELECT version FROM crm_schema ORDER BY version").fetchall()]
        assert versions == [v for v, _d, _s in MIGRATIONS]
        # history survives, and the new column is there for old rows too
        assert ws.con.execute("SELECT run_id, command, status FROM crm_runs").fetchall() == old_runs
        assert ws.con.execute("SELECT parent_run_id FROM crm_runs").fetchall() == [(None,)]
        run = ws.start_run("validate")
        run.step.metric("rows_in", 3)
        ws.finish_run(run, "pass", 0, {})
        assert ws.con.execute("SELECT value FROM crm_metrics WHERE run_id = ?", [run.run_id]).fetchall() == [(3.0,)]
    with Workspace(path) as ws:  # a second open applies nothing
        assert ws.con.execute("SELECT count(*) FROM crm_schema").fetchall()[0][0] == len(MIGRATIONS)


def test_newer_workspace_is_refused_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Workspace(path) as ws:
        ws.con.execute("INSERT INTO crm_schema VALUES (?, 'from the future', '9.9', now())", [SCHEMA_VERSION + 1])
    with pytest.raises(InputError) as err:
        Workspace(path).open()
    assert f"schema version {SCHEMA_VERSION + 1}" in err.value.message
    assert int(err.value.exit_code) == 2
    # the refused open released its lock: the file can be opened again by hand
    duckdb.connect(str(path)).close()


def test_newer_workspace_cli_exit_code(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from crmtool.cli import app

    path = tmp_path / "w.duckdb"
    with Workspace(path) as ws:
        ws.con.execute("INSERT INTO crm_schema VALUES (?, 'x', '9.9', now())", [SCHEMA_VERSION + 5])
    result = CliRunner().invoke(app, ["segment", "diff", "--list-runs", "-w", str(path)])
    assert result.exit_code == 2
    assert "newer than this crmtool" in result.output


def test_a_workspace_of_this_release_opens_in_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next release appends a migration; a workspace made now reaches it on open, data intact."""
    import crmtool.workspace as workspace

    path = tmp_path / "w.duckdb"
    with Workspace(path) as ws:
        run = ws.start_run("clean")
        ws.finish_run(run, "pass", 0, {"counts": {"rows_in": 7}})
    nxt = (SCHEMA_VERSION + 1, "next release: runs get a host", "ALTER TABLE crm_runs ADD COLUMN host VARCHAR")
    monkeypatch.setattr(workspace, "MIGRATIONS", (*MIGRATIONS, nxt))
    monkeypatch.setattr(workspace, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with Workspace(path) as ws:
        assert schema_version(ws.con) == SCHEMA_VERSION + 1
        assert ws.con.execute("SELECT command, host FROM crm_runs").fetchall() == [("clean", None)]
        assert ws.con.execute("SELECT value FROM crm_metrics WHERE name = 'rows_in'").fetchall() == [(7.0,)]
