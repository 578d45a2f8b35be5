"""A full disk or DuckDB's memory cap reached, under any command: one line and exit 2, no traceback.

The failures are real: DuckDB and Python writing to /dev/full (ENOSPC), and a DuckDB statement
over its memory cap, each raised inside the CLI's error boundary (cli.common.run_command)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
import typer

from crmtool.cli.common import Ui, run_command

FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not FULL.exists(), reason="no /dev/full on this system")


def _duckdb_writes_to_full_disk() -> None:
    duckdb.connect().execute(f"COPY (SELECT * FROM range(100000)) TO '{FULL}' (FORMAT csv)")


def _python_writes_to_full_disk() -> None:
    with FULL.open("w") as fh:
        fh.write("x" * 100_000)
        fh.flush()
        os.fsync(fh.fileno())


def _duckdb_over_its_memory_cap() -> None:
    con = duckdb.connect(config={"memory_limit": "10MB", "threads": 1})
    con.execute("SELECT list(i) FROM range(20000000) t(i)").fetchall()


@pytest.mark.parametrize(("body", "says"), [
    pytest.param(_duckdb_writes_to_full_disk, "No space left on device", marks=needs_dev_full),
    pytest.param(_python_writes_to_full_disk, "No space left on device", marks=needs_dev_full),
    (_duckdb_over_its_memory_cap, "ran out of memory"),
])
def test_no_room_is_one_line_and_exit_2(body: Callable[[], None], says: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as ended:
        run_command(Ui(), lambda: body() or 0)
    assert ended.value.exit_code == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert "previous outputs are unchanged" in err


def test_other_failures_still_surface_as_bugs() -> None:
    def bug() -> int:
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        run_command(Ui(), bug)
