"""``audit verify`` names a pending (unsealed) run and checks it; a format-1 log is checked, not shown;
``--key`` verifies the seals made with an older key."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmtool.audit import AuditWriter, verify_log
from crmtool.cli import app
from crmtool.errors import InputError
from crmtool.keys import KeyedHasher

from .conftest import KEY

HASHER = KeyedHasher(KEY.encode(), "test")


@pytest.fixture(autouse=True)
def _in_tmp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the CLI's default workspace names a file in the working folder


def _writer(log: Path) -> AuditWriter:
    writer = AuditWriter(log, "20261202T010000Z-pending", HASHER, command="clean")
    writer.add({"type": "run", "command": "clean"})
    writer.add({"type": "note", "text": "half-written"})
    return writer


def _append_half(log: Path, writer: AuditWriter) -> None:
    """What a run killed during its append leaves: the first of its records (and half a line)."""
    lines, _head, _seq = writer._lines({})
    with (log / "chain.jsonl").open("ab") as fh:
        fh.write(lines[0].encode() + lines[1].encode()[:10])


def test_a_run_being_written_is_reported_as_pending_and_checked(log: Path) -> None:
    sealed = verify_log(log, HASHER)
    writer = _writer(log)
    try:
        _append_half(log, writer)
        live = verify_log(log, HASHER)  # this process holds the log's lock: the run is live
        assert live.ok, (live.where, live.problem)
        assert live.status == "warn" and (live.runs, live.head) == (sealed.runs, sealed.head)
        [item] = live.pending_runs
        assert item["run"] == writer.run_id and item["status"] == "warn" and item["command"] == "clean"
        assert item["records_after_head"] == 1 and not item["sealed_in_chain"]
    finally:
        writer._release()  # killed: nobody holds the lock any more
    killed = verify_log(log, HASHER)
    assert killed.ok and killed.pending_runs[0]["status"] == "aborted"
    code, out = _cli("audit", "verify", log, "--key-file", _keyfile(log.parent, KEY))
    assert code == 0 and "pending run 20261202T010000Z-pending (clean" in out and "interrupted" in out


def test_records_after_head_that_do_not_continue_the_chain_fail(log: Path) -> None:
    writer = _writer(log)
    writer._release()
    data = (log / "chain.jsonl").read_bytes()
    first_line = data[:data.index(b"\n") + 1]
    with (log / "chain.jsonl").open("ab") as fh:
        fh.write(first_line)  # an old record put after HEAD under cover of the pending note
    result = verify_log(log, HASHER)
    assert not result.ok and "do not continue the chain" in result.problem


def test_a_pending_note_that_names_another_run_fails(log: Path) -> None:
    writer = _writer(log)
    writer._release()
    note = log / "pending" / f"{writer.run_id}.json"
    note.write_text(json.dumps({"run": "someone-else"}), encoding="utf-8")
    result = verify_log(log, HASHER)
    assert not result.ok and result.where == f"pending/{note.name}"


def test_records_after_head_of_a_run_without_note_fail(log: Path) -> None:
    writer = _writer(log)
    _append_half(log, writer)
    writer._release()
    # a second pending note keeps verify at HEAD, the tail's own note is gone
    (log / "pending" / f"{writer.run_id}.json").rename(log / "pending" / "other-run.json")
    (log / "pending" / "other-run.json").write_text(json.dumps({"run": "other-run"}), encoding="utf-8")
    result = verify_log(log, HASHER)
    assert not result.ok and "no pending note" in result.problem


def _cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def _keyfile(folder: Path, key: str) -> Path:
    path = folder / f"key-{len(key)}.key"
    path.write_text(key, encoding="utf-8")
    return path


FORMAT1 = ('{"type":"run","command":"clean","run":"r1","seq":1,"ts":"2026-11-01T00:00:00Z",'
           f'"hash":"{"a" * 64}","prev":"{"0" * 64}"}}\n')


def test_a_format_1_log_is_verified_read_only_and_not_shown(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "audit.jsonl").write_text(FORMAT1, encoding="utf-8")  # its hash is not its content's
    for target in (out / "audit.jsonl", out):
        result = verify_log(target, HASHER)
        assert (result.ok, result.format, result.where) == (False, 1, f"{out / 'audit.jsonl'}:1")
        assert "does not match its hash" in result.problem
        code, output = _cli("audit", "verify", target, "--no-key")
        assert code == 1 and "does not match its hash" in output and "Traceback" not in output
        code, output = _cli("audit", "show", target)
        assert code == 2 and "format 1" in output and "audit.jsonl.format1" in output
    assert (out / "audit.jsonl").read_text(encoding="utf-8") == FORMAT1  # read only
    # a JSON Lines file that is not a crmtool log keeps the plain message
    (tmp_path / "other.jsonl").write_text('{"a": 1}\n', encoding="utf-8")
    with pytest.raises(InputError, match="is a file"):
        verify_log(tmp_path / "other.jsonl", HASHER)


def test_after_a_key_change_old_seals_verify_with_the_old_key(log: Path, tmp_path: Path) -> None:
    new = _keyfile(tmp_path, "another-key-fedcba9876543210")
    old = _keyfile(tmp_path, KEY)
    env_key = os.environ.pop("CRMTOOL_KEY", None)
    try:
        code, output = _cli("audit", "verify", log, "--key", new)
        assert code == 1 and "does not match the key" in output
        code, output = _cli("audit", "verify", log, "--key", old)
        assert code == 0 and ": ok," in output
    finally:
        if env_key is not None:
            os.environ["CRMTOOL_KEY"] = env_key
    shutil.rmtree(log)


def test_a_run_with_a_new_key_does_not_continue_the_old_keys_log(log: Path) -> None:
    before = {p.name: p.read_bytes() for p in log.iterdir() if p.is_file()}
    with pytest.raises(InputError, match="another key"):
        AuditWriter(log, "20261202T020000Z-newkey", KeyedHasher(b"another-key-fedcba9876543210", "new"))
    assert {p.name: p.read_bytes() for p in log.iterdir() if p.is_file()} == before
    assert not list((log / "pending").iterdir())
