"""suppress list / remove: counts without values, re-opt-in with reason and date, every change audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crmtool.audit import CHAIN, show

from .conftest import EXAMPLES, cli


def _audit(log: Path) -> list[dict[str, object]]:
    """Every entry of the log, chain events and change set rows, through the audit package's reader."""
    return list(show(log))


def _raw(log: Path) -> str:
    """The log's chain and its change sets' values as text (Parquet pages are compressed)."""
    import duckdb

    text = (log / CHAIN).read_text(encoding="utf-8")
    sets = sorted((log / "sets").glob("*.parquet"))
    if sets:
        con = duckdb.connect()
        try:
            text += str(con.execute("SELECT * FROM read_parquet(?)", [[str(p) for p in sets]]).fetchall())
        finally:
            con.close()
    return text


def test_import_list_remove_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db, log = tmp_path / "w.duckdb", tmp_path / "w.audit"  # the workspace's log, named here all the same
    code, out = cli("suppress", "import", EXAMPLES / "bajas.csv", "-k", "unsubscribe", "-w", db, "--audit-log", log)
    assert code == 0, out
    added = [e for e in _audit(log) if e["type"] == "suppression_added"]
    assert len(added) == 3 and all(str(e["identifier"]).startswith("k:") for e in added)
    assert "ana" not in _raw(log).lower()
    # any spelling of the address finds the entry (Gmail ignores dots and +tags)
    code, out = cli("suppress", "list", "--identifier", " Ana.Garcia+promo@GoogleMail.com", "-w", db)
    assert code == 0, out
    assert "identifier: suppressed (unsubscribe)" in out and "3 entries" in out
    code, out = cli("suppress", "remove", "anagarcia@gmail.com", "--date", "2026-11-02", "-w", db,
                    "--audit-log", log)
    assert code != 0 and "reason" in out.lower()  # no reason: refused
    code, out = cli("suppress", "remove", "anagarcia@gmail.com", "--reason", "signed up again", "--date",
                    "2026-11-02", "-w", db, "--audit-log", log)
    assert code == 0, out
    assert "removed 1 suppression entries" in out
    removed = [e for e in _audit(log) if e["type"] == "suppression_removed"]
    assert removed and removed[0]["reason"] == "signed up again" and removed[0]["opted_in_on"] == "2026-11-02"
    code, out = cli("suppress", "list", "--identifier", "ana.garcia@gmail.com", "-w", db, "--format", "json")
    assert json.loads(out)["identifier"]["suppressed"] is False


def test_an_erasure_is_never_removed_by_a_re_opt_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "w.duckdb"
    req = tmp_path / "r.csv"
    req.write_text("request_ref,email\nR1,eva@x.es\n", encoding="utf-8")
    assert cli("erase", "--requests", req, "--out", tmp_path / "o", "-w", db)[0] == 0
    code, out = cli("suppress", "remove", "eva@x.es", "--reason", "asked", "--date", "2026-11-02", "-w", db)
    assert code == 0 and "removed 0" in out and "erased" in out
    code, out = cli("suppress", "list", "--identifier", "EVA@x.es", "-w", db)
    assert "suppressed (erasure)" in out
