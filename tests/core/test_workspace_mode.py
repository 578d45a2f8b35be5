"""Data at rest: the workspace file and its write-ahead log are owner-only; outputs keep the user's umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from crmtool.workspace import open_workspace


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
