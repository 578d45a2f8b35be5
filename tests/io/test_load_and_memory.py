"""The load step without the erasure detour, and the workspace's default memory cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmtool.identity.load import load_without_erased
from crmtool.workspace import DEFAULT_MEMORY_LIMIT, Workspace


def _export(tmp_path: Path) -> Path:
    path = tmp_path / "clientes.csv"
    rows = ["customer_id;email;city"] + [f"C{i:03d};p{i}@example.com;Ciudad {i % 7}" for i in range(1, 301)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _table(ws: Workspace, table: str) -> list[tuple[object, ...]]:
    return ws.con.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()


def test_a_load_with_nobody_erased_equals_the_detour(tmp_path: Path) -> None:
    export = _export(tmp_path)
    with Workspace(tmp_path / "a.duckdb") as ws:
        direct = load_without_erased(ws, export, "data_a")
        fast = _table(ws, "data_a")
    # an erasure of somebody else on record: the export takes the detour through memory
    with Workspace(tmp_path / "b.duckdb") as ws:
        from crmtool.privacy.identity import ensure_tables

        ensure_tables(ws.con)
        ws.con.execute("INSERT INTO privacy_erasures (token, identifier_type) VALUES ('not-a-token', 'email')")
        detour = load_without_erased(ws, export, "data_a")
        slow = _table(ws, "data_a")
    assert fast == slow and len(fast) == 300
    assert [r[0] for r in fast] == list(range(1, 301))  # _row in file order
    assert (direct.rows, direct.columns, direct.erased_dropped) == (detour.rows, detour.columns, 0)


def _as_duckdb_prints(limit: str | None) -> str:
    import duckdb

    con = duckdb.connect()
    if limit is not None:
        con.execute(f"SET memory_limit = '{limit}'")
    return str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])


def _limit_text(ws: Workspace) -> str:
    return str(ws.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])


def test_duckdb_is_capped_by_default_and_the_variable_replaces_the_cap(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRMTOOL_MEMORY_LIMIT", raising=False)
    with Workspace(":memory:") as ws:
        default = _limit_text(ws)
        spill = str(ws.con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0])
        sandbox = ws._sandbox
    assert default == _as_duckdb_prints(DEFAULT_MEMORY_LIMIT) == _as_duckdb_prints("1.5GB")
    assert sandbox is not None and spill.startswith(str(sandbox))  # spills stay inside the sandbox
    monkeypatch.setenv("CRMTOOL_MEMORY_LIMIT", "700MB")
    with Workspace(":memory:") as ws:
        capped = _limit_text(ws)
    monkeypatch.setenv("CRMTOOL_MEMORY_LIMIT", "off")
    with Workspace(":memory:") as ws:
        uncapped = _limit_text(ws)
    assert capped == _as_duckdb_prints("700MB")
    assert uncapped == _as_duckdb_prints(None)  # DuckDB's own default: 80% of RAM


def test_a_capped_workspace_has_its_allocator_flush_freed_memory_sooner(monkeypatch: pytest.MonkeyPatch) -> None:
    from crmtool.workspace import ALLOCATOR_SETTINGS

    monkeypatch.delenv("CRMTOOL_MEMORY_LIMIT", raising=False)
    with Workspace(":memory:") as ws:
        got = {name: ws.con.execute(f"SELECT current_setting('{name}')").fetchall()[0][0]
               for name in ALLOCATOR_SETTINGS}
    assert got["allocator_background_threads"] is True
    assert got["allocator_flush_threshold"] == "32MB"
    assert got["allocator_bulk_deallocation_flush_threshold"] == _setting_as_printed(
        "allocator_bulk_deallocation_flush_threshold", "64MB")


def _setting_as_printed(name: str, value: str) -> object:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET {name} = '{value}'")
    return con.execute(f"SELECT current_setting('{name}')").fetchall()[0][0]
