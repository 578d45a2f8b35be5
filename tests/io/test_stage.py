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
