"""The staging folder that clean, segment and dedupe publish through."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmtool.errors import UsageError
from crmtool.io.stage import STAGE_PREFIX, staged


def test_publish_moves_nested_files_and_the_stage_goes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "segments").mkdir(parents=True)
    (out / "segments" / "a.csv").write_text("old", encoding="utf-8")
    with staged(out) as stage:
        (stage.path / "segments").mkdir()
        (stage.path / "segments" / "a.csv").write_text("new", encoding="utf-8")
        (stage.path / "m.csv").write_text("m", encoding="utf-8")
        assert (out / "segments" / "a.csv").read_text(encoding="utf-8") == "old"  # nothing lands before publish
        stage.publish([out / "segments" / "a.csv", out / "m.csv"])
    assert (out / "segments" / "a.csv").read_text(encoding="utf-8") == "new"
    assert (out / "m.csv").read_text(encoding="utf-8") == "m"
    assert not list(out.glob(STAGE_PREFIX + "*"))


def test_a_failure_before_publish_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "m.csv").write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), staged(out) as stage:
        (stage.path / "m.csv").write_text("new", encoding="utf-8")
        raise RuntimeError("dedupe ran out of memory")
    assert [p.name for p in out.iterdir()] == ["m.csv"]
    assert (out / "m.csv").read_text(encoding="utf-8") == "old"


def test_an_out_folder_that_cannot_be_made_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(UsageError, match="cannot create the folder"), staged(blocker / "out"):
        pass


HOLDER = """
import sys, time
from crmtool.io.stage import private_scratch
with private_scratch() as folder:
    (folder / "input.parquet").write_bytes(b"ana@example.com")
    print(folder, flush=True)
    time.sleep(120)
"""


def test_scratch_of_a_killed_run_is_swept_by_the_next_run_a_live_ones_stays(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Spark's staged input is personal data in the temp dir: a run killed with -9 cannot remove
    it, so the next recorded run of any command does (a live run's folder stays)."""
    import os
    import signal
    import subprocess
    import sys
    import tempfile

    from crmtool.io.stage import SCRATCH_PREFIX, private_scratch
    from crmtool.workspace import Workspace

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", HOLDER], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        killed, live = (Path(p.stdout.readline().strip()) for p in procs)  # type: ignore[union-attr]
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].wait()
        assert (killed / "input.parquet").exists()  # nothing could remove it
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        with Workspace(":memory:") as ws:
            ws.start_run("validate")
        assert not killed.exists()
        assert (live / "input.parquet").exists()
        with private_scratch() as mine:
            assert mine.parent == tmp_path and mine.name.startswith(SCRATCH_PREFIX)
            assert oct(mine.stat().st_mode & 0o777) == "0o700"
        assert not mine.exists()
    finally:
        for p in procs:
            p.kill()
            p.wait()
            p.stdout.close()  # type: ignore[union-attr]
