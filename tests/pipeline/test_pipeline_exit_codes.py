"""Exit codes a scheduler understands: 3 when the workspace is busy, 130 when interrupted."""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock
from typer.testing import CliRunner

from crmtool.cli import app
from crmtool.pipeline.registry import STEP_KINDS, StepContext, StepKind, StepOutcome, register
from crmtool.status import Status
from crmtool.workspace import Workspace


def _pipeline(tmp_path: Path, step: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(f"version: 1\nworkspace: w.duckdb\nsteps:\n  - step: {step}\n", encoding="utf-8")
    return path


def test_busy_workspace_exits_3_and_publishes_nothing(tmp_path: Path) -> None:
    def _ok(ctx: StepContext, p: dict[str, object]) -> StepOutcome:
        return StepOutcome(Status.PASS)

    register(StepKind("noop", {}, (), _ok))
    try:
        path = _pipeline(tmp_path, "noop")
        with FileLock(str(tmp_path / "w.duckdb") + ".lock"):
            result = CliRunner().invoke(app, ["run", str(path), "--lock-timeout", "0.2", "-q"])
        assert result.exit_code == 3
        assert "in use by another crmtool run" in result.stderr
        assert not (tmp_path / "out" / "latest.txt").exists()
        assert CliRunner().invoke(app, ["run", str(path), "-q"]).exit_code == 0
        assert (tmp_path / "out" / "latest.txt").exists()
    finally:
        STEP_KINDS.pop("noop")


def test_interrupted_run_exits_130_and_is_recorded_aborted(tmp_path: Path) -> None:
    def _interrupt(ctx: StepContext, p: dict[str, object]) -> StepOutcome:
        raise KeyboardInterrupt

    register(StepKind("interrupt", {}, (), _interrupt))
    try:
        log = tmp_path / "run.log"
        result = CliRunner().invoke(app, ["run", str(_pipeline(tmp_path, "interrupt")), "-q", "--log-file", str(log)])
        assert result.exit_code == 130
        assert not (tmp_path / "out" / "latest.txt").exists()
        assert "aborted exit=130" in log.read_text(encoding="utf-8").splitlines()[-1]
        with Workspace(tmp_path / "w.duckdb") as ws:
            assert ws.con.execute("SELECT status, exit_code FROM crm_runs WHERE command = 'run'"
                                  ).fetchall() == [("aborted", 130)]
    finally:
        STEP_KINDS.pop("interrupt")


def test_a_crashing_step_still_finishes_the_run_record(tmp_path: Path) -> None:
    def _crash(ctx: StepContext, p: dict[str, object]) -> StepOutcome:
        raise RuntimeError("a bug")

    register(StepKind("crash", {}, (), _crash))
    try:
        result = CliRunner().invoke(app, ["run", str(_pipeline(tmp_path, "crash")), "-q"])
        assert result.exit_code != 0 and isinstance(result.exception, RuntimeError)
        with Workspace(tmp_path / "w.duckdb") as ws:
            assert ws.con.execute("SELECT status FROM crm_runs WHERE command = 'run'").fetchall() == [("error",)]
        assert not (tmp_path / "out" / "latest.txt").exists()
    finally:
        STEP_KINDS.pop("crash")
