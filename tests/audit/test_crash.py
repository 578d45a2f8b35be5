"""kill -9 of a real ``crmtool clean`` at each point of its audit write: the earlier outputs and
log stay whole, the log verifies, and the next run succeeds and records the aborted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crmtool.audit import iter_entries, verify_log
from crmtool.audit.writer import PAUSE_ENV
from crmtool.keys import KeyedHasher

from .conftest import EXAMPLE, KEY, RULES

RULE_FILE = RULES / "10-normalise.yaml"  # no dedupe section: one audit run per clean


def _clean(root: Path, pause: str | None = None, ws: str = "ws") -> subprocess.Popen[bytes]:
    env = dict(os.environ, CRMTOOL_KEY=KEY)
    env.pop(PAUSE_ENV, None)
    if pause:
        env[PAUSE_ENV] = pause
    cmd = [sys.executable, "-m", "crmtool", "clean", str(EXAMPLE), "--rules", str(RULE_FILE), "--out",
           str(root / "out"), "--workspace", str(root / f"{ws}.duckdb"), "--quiet"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen[bytes]) -> None:
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode in (0, 1), err.decode()


def _pause_at(root: Path, point: str, ws: str = "ws") -> subprocess.Popen[bytes]:
    """A clean paused (alive) at ``point``."""
    proc = _clean(root, point, ws)
    marker = root / f"{ws}.audit" / f"paused-{point}"
    deadline = time.monotonic() + 300
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"clean ended before {point}: {proc.communicate()[1].decode()}")
        assert time.monotonic() < deadline, f"clean never reached {point}"
        time.sleep(0.05)
    marker.unlink()
    return proc


def _kill_at(root: Path, point: str, ws: str = "ws") -> None:
    proc = _pause_at(root, point, ws)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()


def _outputs(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "out").glob("clientes.*"))}


HASHER = KeyedHasher(KEY.encode(), "test")
# point -> whether the killed run's records end up sealed in the log (then no abort is recorded)
POINTS = {"opened": False, "set-changes": False, "before-chain": False, "mid-chain": False,
          "before-head": True, "after-head": True}


@pytest.mark.slow
@pytest.mark.parametrize("point", list(POINTS))
def test_kill_9_during_the_audit_write(tmp_path: Path, point: str) -> None:
    _finish(_clean(tmp_path))
    before = _outputs(tmp_path)
    log = tmp_path / "ws.audit"
    assert verify_log(log, HASHER).runs == 1

    _kill_at(tmp_path, point)
    # the earlier outputs are there, whole (a rerun writes the same bytes, so either is fine)
    assert _outputs(tmp_path) == before
    # the log verifies: the killed run is either not there yet, or complete and sealed
    killed = verify_log(log, HASHER)
    assert killed.ok, (killed.where, killed.problem)
    assert killed.runs == (2 if POINTS[point] and point == "after-head" else 1)
    assert killed.pending  # its note tells the next run what happened

    _finish(_clean(tmp_path))
    after = verify_log(log, HASHER)
    assert after.ok, (after.where, after.problem)
    assert after.runs == (3 if POINTS[point] else 2)
    assert after.pending == []
    aborted = [e for e in iter_entries(log) if e["type"] == "aborted"]
    if POINTS[point]:
        assert aborted == []
    else:
        assert len(aborted) == 1 and aborted[0]["command"] == "clean"
        assert aborted[0]["run"] != aborted[0]["aborted_run"]
    # no change set of the killed run is left unless its run was sealed
    listed = {s["file"].split("/")[1] for e in iter_entries(log) if e["type"] == "seal" for s in e["sets"]}
    assert {p.name for p in (log / "sets").iterdir()} == listed
    assert _outputs(tmp_path) == before


@pytest.mark.slow
def test_two_workspaces_into_one_out_folder_keep_separate_logs(tmp_path: Path) -> None:
    env = dict(os.environ, CRMTOOL_KEY=KEY)
    procs = [subprocess.Popen([sys.executable, "-m", "crmtool", "clean", str(EXAMPLE), "--rules", str(RULE_FILE),
                               "--out", str(tmp_path / "out"), "--workspace", str(tmp_path / f"ws{i}.duckdb"),
                               "--quiet"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(2)]
    for proc in procs:
        _finish(proc)
    for i in range(2):
        result = verify_log(tmp_path / f"ws{i}.audit", HASHER)
        assert result.ok and result.runs == 1
    assert not (tmp_path / "out" / "crmtool.audit").exists()
    heads = {json.loads((tmp_path / f"ws{i}.audit" / "HEAD").read_text())["run"] for i in range(2)}
    assert len(heads) == 2


def _stages(root: Path) -> set[str]:
    return {p.name for p in (root / "out").glob(".crmtool-stage-*")}


@pytest.mark.slow
def test_stage_folders_of_killed_runs_are_swept_but_not_a_live_runs(tmp_path: Path) -> None:
    _finish(_clean(tmp_path))
    other = tmp_path / "out" / ".crmtool-other-kind"  # not clean's kind of folder: never touched
    other.mkdir()
    _kill_at(tmp_path, "set-changes")  # the change set is written while the outputs are staged
    killed = _stages(tmp_path)
    assert len(killed) == 1

    live = _pause_at(tmp_path, "set-changes", ws="ws2")  # another workspace, same --out
    try:
        assert len(_stages(tmp_path)) == 1 and not _stages(tmp_path) & killed  # the dead one is gone
        held = _stages(tmp_path)
        _finish(_clean(tmp_path, ws="ws3"))  # a run beside the live one leaves its folder alone
        assert _stages(tmp_path) == held
    finally:
        os.kill(live.pid, signal.SIGKILL)
        live.communicate()
    _finish(_clean(tmp_path))
    assert _stages(tmp_path) == set()
    assert other.is_dir()
    assert not list((tmp_path / "out").glob(".crmtool-making-*"))
    assert verify_log(tmp_path / "ws.audit", HASHER).ok
