"""The pipeline's ``latest`` pointer where symbolic links cannot be made (Windows, FAT/SMB folders).

``os.symlink`` is made to fail as it does there (``OSError``, ``NotImplementedError``); the
pointer file ``latest.txt`` must still be replaced atomically (a new file renamed over the old,
so a reader sees the old run or the new one, never half a line) and no link may be left naming
another run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmtool.cli import app
from crmtool.pipeline.runner import LINK, POINTER, latest_run, publish_latest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _no_symlinks(exc: type[Exception]):  # type: ignore[no-untyped-def]
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise exc("symbolic links are not supported here")

    return refuse


def _out(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    for run_id in ("r1", "r2"):
        (out / "runs" / run_id).mkdir(parents=True)
    return out


@pytest.mark.parametrize("error", [OSError, NotImplementedError])
def test_a_failing_symlink_still_publishes_latest_txt_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 error: type[Exception]) -> None:
    out = _out(tmp_path)
    made = publish_latest(out, "r1", symlink=True)  # links work here: yesterday's run made one
    assert made and (out / LINK).resolve() == (out / "runs" / "r1").resolve()
    before = (out / POINTER).stat().st_ino
    monkeypatch.setattr(os, "symlink", _no_symlinks(error))
    assert publish_latest(out, "r2", symlink=True) is False
    assert (out / POINTER).read_text(encoding="utf-8") == "runs/r2\n"
    assert latest_run(out) == "r2"
    # replaced by a rename, not rewritten in place: a new inode, and no temp file left behind
    assert (out / POINTER).stat().st_ino != before
    assert sorted(p.name for p in out.iterdir()) == [POINTER, "runs"]  # yesterday's link is gone too


def test_without_symlinks_by_choice_only_the_pointer_file_is_written(tmp_path: Path) -> None:
    out = _out(tmp_path)
    assert publish_latest(out, "r1", symlink=False) is False
    assert sorted(p.name for p in out.iterdir()) == [POINTER, "runs"]
    assert latest_run(out) == "r1"
    assert publish_latest(out, "r2", symlink=True) is True  # where links work they are made again
    assert (out / LINK).resolve() == (out / "runs" / "r2").resolve()


def test_a_folder_named_latest_is_left_alone(tmp_path: Path) -> None:
    out = _out(tmp_path)
    (out / LINK).mkdir()
    (out / LINK / "mine.txt").write_text("not crmtool's", encoding="utf-8")
    assert publish_latest(out, "r1", symlink=True) is False
    assert (out / LINK / "mine.txt").read_text(encoding="utf-8") == "not crmtool's"
    assert latest_run(out) == "r1"


PIPELINE = """version: 1
workspace: out/crmtool.duckdb
out: out
inputs:
  old: clientes.csv
  new: clientes-next.csv
steps:
  - step: diff
    old: old
    new: new
    key: customer_id
"""


def test_a_pipeline_run_publishes_without_symlinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("clientes.csv", "clientes-next.csv"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    (tmp_path / "pipeline.yaml").write_text(PIPELINE, encoding="utf-8")
    monkeypatch.setattr(os, "symlink", _no_symlinks(OSError))
    result = CliRunner().invoke(app, ["run", str(tmp_path / "pipeline.yaml"), "--date", "2026-11-01"])
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "out"
    run_id = latest_run(out)
    assert run_id and (out / "runs" / run_id / "diff" / "changes.csv").is_file()
    assert not (out / LINK).is_symlink() and not (out / LINK).exists()
