"""A ``clean`` whose dedupe step fails (killed, or out of memory) publishes nothing: the output
folder and the workspace's ``clean_`` table stay as the previous run left them, and the next run
succeeds. Before, clean and rejects were moved into place before dedupe ran, so a failed dedupe
left new clean/rejects beside the previous golden, clusters and manifest."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from crmtool.audit import verify_log
from crmtool.audit.writer import PAUSE_ENV
from crmtool.keys import KeyedHasher

from .conftest import EXAMPLE, KEY, RULES

HASHER = KeyedHasher(KEY.encode(), "test")


def _smaller_export(folder: Path) -> Path:
    """The example without its last 40 rows, under the same file name (so the same outputs)."""
    folder.mkdir()
    raw = EXAMPLE.read_bytes()
    lines = raw.splitlines(keepends=True)
    target = folder / EXAMPLE.name
    target.write_bytes(b"".join(lines[:-40]))
    return target


def _run(root: Path, export: Path, pause: str | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ, CRMTOOL_KEY=KEY)
    env.pop(PAUSE_ENV, None)
    if pause:
        env[PAUSE_ENV] = pause
    cmd = [sys.executable, "-m", "crmtool", "clean", str(export), "--rules", str(RULES), "--out",
           str(root / "out"), "--workspace", str(root / "ws.duckdb"), "--quiet"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen[bytes]) -> None:
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode in (0, 1), err.decode()


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "out").iterdir()) if p.is_file()}


def _clean_rows(root: Path) -> int:
    con = duckdb.connect(str(root / "ws.duckdb"), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM clean_clientes").fetchall()[0][0])
    finally:
        con.close()


def _data_rows(path: Path) -> int:
    with path.open(encoding="utf-8", newline="") as fh:  # the example's outputs: UTF-8, ","
        return sum(1 for _ in csv.reader(fh)) - 1


@pytest.mark.slow
def test_kill_9_in_the_dedupe_step_publishes_nothing(tmp_path: Path) -> None:
    _finish(_run(tmp_path, EXAMPLE))
    before = _files(tmp_path)
    assert {"clientes.clean.csv", "clientes.rejects.csv", "golden.csv", "clusters.csv",
            "manifest.json"} <= set(before)
    rows_before = _clean_rows(tmp_path)

    smaller = _smaller_export(tmp_path / "tonight")
    # paused where the dedupe run writes its merges: clean is sealed, dedupe's files are written
    proc = _run(tmp_path, smaller, pause="set-merges")
    marker = tmp_path / "ws.audit" / "paused-set-merges"
    deadline = time.monotonic() + 300
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"clean ended before dedupe's merges: {proc.communicate()[1].decode()}")
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()

    assert _files(tmp_path) == before  # not one file of the killed run (clean, rejects, golden, ...)
    assert _clean_rows(tmp_path) == rows_before
    assert verify_log(tmp_path / "ws.audit", HASHER).ok

    _finish(_run(tmp_path, smaller))  # the next run publishes the smaller export whole
    after = _files(tmp_path)
    assert after["clientes.clean.csv"] != before["clientes.clean.csv"]
    assert _clean_rows(tmp_path) < rows_before
    assert _data_rows(tmp_path / "out" / "clientes.clean.csv") == _clean_rows(tmp_path)
    assert not list((tmp_path / "out").glob(".crmtool-stage-*"))
    assert verify_log(tmp_path / "ws.audit", HASHER).ok


def test_dedupe_out_of_memory_leaves_the_previous_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB running out of memory inside dedupe (as at 10M rows under a low cap): one line, exit 2,
    and the claim it makes ("the previous outputs are unchanged") holds."""
    from typer.testing import CliRunner

    import crmtool.dedupe.api as dedupe_api
    from crmtool.cli import app

    monkeypatch.setenv("CRMTOOL_KEY", KEY)
    args = ["clean", "--rules", str(RULES), "--out", str(tmp_path / "out"), "--workspace",
            str(tmp_path / "ws.duckdb"), "--quiet"]
    first = CliRunner().invoke(app, [*args[:1], str(EXAMPLE), *args[1:]])
    assert first.exit_code in (0, 1), first.output
    before = _files(tmp_path)
    rows_before = _clean_rows(tmp_path)

    def out_of_memory(*_a: object, **_k: object) -> None:
        raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block of size 256.0 KiB")

    monkeypatch.setattr(dedupe_api, "_candidate_pairs", out_of_memory)
    smaller = _smaller_export(tmp_path / "tonight")
    failed = CliRunner().invoke(app, [*args[:1], str(smaller), *args[1:]])
    assert failed.exit_code == 2, failed.output
    assert "ran out of memory" in failed.output and "previous outputs are unchanged" in failed.output
    assert "Traceback" not in failed.output
    assert _files(tmp_path) == before
    assert _clean_rows(tmp_path) == rows_before
    assert not list((tmp_path / "out").glob(".crmtool-stage-*"))
    con = duckdb.connect(str(tmp_path / "ws.duckdb"), read_only=True)
    try:
        staging = con.execute("SELECT count(*) FROM information_schema.tables "
                              "WHERE table_name LIKE '__staging_clean_%'").fetchall()[0][0]
    finally:
        con.close()
    assert staging == 0
