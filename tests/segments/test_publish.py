"""``segment`` publishes its files together: a run that fails before the end leaves the previous
send lists (never today's beside yesterday's), and the send list of a segment the file no longer has
is removed rather than left to be mailed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from crmtool.segments import api, membership
from crmtool.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"
LAST = "  - name: big_declared_spenders\n"


def _run(ws: Workspace, spec: Path, out: Path, as_of: date = date(2026, 11, 1)) -> api.SegmentResult:
    return api.segment(ws, EX / "clientes.csv", spec, out_dir=out, orders=EX / "pedidos.csv",
                       events=EX / "eventos.csv", as_of=as_of)


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _without_last_segment(tmp_path: Path) -> Path:
    text = (ROOT / "segments.yaml").read_text(encoding="utf-8")
    assert text.count(LAST) == 1 and text.index(LAST) > text.index("  - name: birthday_this_month")
    spec = tmp_path / "segments.yaml"
    spec.write_text(text[: text.index(LAST)], encoding="utf-8")
    return spec


def test_a_failed_run_leaves_the_previous_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    with Workspace(tmp_path / "ws.duckdb") as ws:
        _run(ws, ROOT / "segments.yaml", out)
        before = _files(out)
        assert "segments/champions.csv" in before

        def broken(*_a: object, **_k: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(membership, "record", broken)
        with pytest.raises(OSError):
            _run(ws, ROOT / "segments.yaml", out, as_of=date(2026, 5, 1))  # other lists than before
    assert _files(out) == before
    assert not list(out.glob(".crmtool-*"))


def test_lists_of_dropped_segments_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with Workspace(tmp_path / "ws.duckdb") as ws:
        first = _run(ws, ROOT / "segments.yaml", out)
        assert first.removed_lists == []
        mine = out / "segments" / "notes.txt"  # not crmtool's: left alone
        mine.write_text("mine", encoding="utf-8")
        second = _run(ws, _without_last_segment(tmp_path), out)
    assert second.removed_lists == ["big_declared_spenders.csv"]
    assert not (out / "segments" / "big_declared_spenders.csv").exists()
    assert (out / "segments" / "champions.csv").is_file()
    assert mine.read_text(encoding="utf-8") == "mine"
    assert second.as_dict()["removed_lists"] == ["big_declared_spenders.csv"]


def test_a_list_changed_since_crmtool_wrote_it_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with Workspace(tmp_path / "ws.duckdb") as ws:
        _run(ws, ROOT / "segments.yaml", out)
        edited = out / "segments" / "big_declared_spenders.csv"
        edited.write_bytes(edited.read_bytes() + b"C9999999\n")
        second = _run(ws, _without_last_segment(tmp_path), out)
    assert second.removed_lists == []
    assert edited.is_file()
