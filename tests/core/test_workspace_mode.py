"""Data at rest: the workspace file and its write-ahead log are owner-only; outputs keep the user's umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from crmtool.workspace import Workspace, open_workspace


def test_workspace_and_wal_are_owner_only_outputs_are_not(tmp_path: Path) -> None:
    from crmtool.io.writers import write_query

    db = tmp_path / "crm.duckdb"
    old = os.umask(0o022)
    try:
        with open_workspace(db) as ws:
            ws.con.execute("CREATE TABLE t AS SELECT range AS i, 'ana@x.es' AS email FROM range(1000)")
            wal = Path(str(db) + ".wal")
            assert wal.exists()
            assert stat.S_IMODE(wal.stat().st_mode) == 0o600
            write_query(ws.con, "SELECT * FROM t", tmp_path / "out.csv", "csv")
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "out.csv").stat().st_mode) == 0o644
        assert os.umask(0o022) == 0o022  # the process umask is given back
    finally:
        os.umask(old)


def test_an_existing_workspace_is_made_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "crm.duckdb"
    with open_workspace(db):
        pass
    db.chmod(0o644)
    with open_workspace(db):
        assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_a_killed_runs_temp_sandbox_is_removed_by_the_next_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a :memory: workspace keeps its sandbox (spill files) in the temp folder; a run killed with
    # kill -9 leaves it there. The next run removes those of processes that are gone, and only those.
    import subprocess
    import sys
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead = tmp_path / f"crmtool.io-{int(gone.stdout)}-x1"
    (dead / "spill").mkdir(parents=True)
    (dead / "spill" / "duckdb_temp_block.tmp").write_bytes(b"\0" * 1024)
    alive = tmp_path / f"crmtool.io-{os.getppid()}-x2"  # the process that started pytest still runs
    alive.mkdir()
    other = tmp_path / "crmtool.io-notapid"
    other.mkdir()
    with Workspace(":memory:") as ws:
        mine = [p for p in tmp_path.iterdir() if p.name.startswith(f"crmtool.io-{os.getpid()}-")]
        assert len(mine) == 1 and ws.con.execute("SELECT 1").fetchall() == [(1,)]
    assert not dead.exists()
    assert alive.exists() and other.exists()
    assert not mine[0].exists()  # the run's own sandbox goes when it closes
