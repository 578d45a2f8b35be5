"""``audit verify`` on a format-1 log: a real log written by crmtool 0.1 (d1db4a4, two ``clean``
runs of the first 30 rows of examples/clientes.csv, each with its dedupe run, under the test key;
``manifest-1.json`` and ``manifest-2.json`` are the manifests of the two cleans) is checked read
only, each damage format 1 can show is named with its line, and the one thing it cannot prove is
said in one line."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmtool.audit import verify_log
from crmtool.audit.legacy import UNPROVEN, verify_format1
from crmtool.cli import app

DATA = Path(__file__).resolve().parent / "data" / "format1"
TAIL = re.compile(r',"hash":"([0-9a-f]{64})","prev":"([0-9a-f]{64})"\}$')


@pytest.fixture()
def log(tmp_path: Path) -> Path:
    shutil.copy(DATA / "audit.jsonl", tmp_path / "audit.jsonl")
    return tmp_path / "audit.jsonl"


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _head(manifest: str) -> str:
    return str(json.loads((DATA / manifest).read_text(encoding="utf-8"))["audit"]["head_sha256"])


def _rehash(line: str, prev: str) -> tuple[str, str]:
    """A line with its hash recomputed and ``prev`` set, as a forger would write it."""
    match = TAIL.search(line)
    assert match is not None
    body = line[:match.start()] + "}"
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return f'{line[:match.start()]},"hash":"{digest}","prev":"{prev}"}}', digest


def _change_line(lines: list[str]) -> int:
    return next(i for i, line in enumerate(lines) if '"type":"change"' in line and '"new":"' in line)


def test_the_real_log_verifies_without_a_key_and_says_what_format_1_cannot_prove(
        log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRMTOOL_KEY", raising=False)
    before = log.read_bytes()
    result = CliRunner().invoke(app, ["audit", "verify", str(log)])
    assert result.exit_code == 0, result.output
    first, second = result.output.splitlines()
    assert first == (f"{log}: ok as format 1, 308 lines in 4 runs, "
                     f"head {_head('manifest-2.json')}")
    assert second == UNPROVEN
    assert log.read_bytes() == before
    found = verify_log(log.parent, None)  # the folder holding audit.jsonl, as --out had it
    assert (found.ok, found.format, found.runs, found.records, found.keyed) == (True, 1, 4, 308, False)


def test_manifests_of_format_1_verify_the_head_or_an_earlier_seal(log: Path) -> None:
    assert verify_format1(log, _head("manifest-2.json"))["prefix"] is False
    earlier = verify_format1(log, _head("manifest-1.json"))  # crmtool 0.1 failed this one
    assert earlier["ok"] and earlier["prefix"]
    assert not verify_format1(log, "ab" * 32)["ok"]
    output = CliRunner().invoke(app, ["audit", "verify", str(log), "--manifest", str(DATA / "manifest-1.json")])
    assert output.exit_code == 0 and "the expected head is an earlier seal" in output.output


def test_an_edited_value_is_named_by_its_line(log: Path) -> None:
    lines = _lines(log)
    i = _change_line(lines)
    lines[i] = lines[i].replace('"new":"', '"new":"x', 1)
    _write(log, lines)
    found = verify_format1(log)
    assert (found["ok"], found["line"]) == (False, i + 1)
    assert "does not match its hash" in found["problem"]
    result = CliRunner().invoke(app, ["audit", "verify", str(log)])
    assert result.exit_code == 1 and f"{log}:{i + 1}: line was edited" in result.output


@pytest.mark.parametrize("damage, expected", [
    ("delete", "chain broken"),
    ("swap", "chain broken"),
    ("rehash", "chain broken"),
    ("rehash-and-link", "does not match the run's lines"),
    ("cut", "has no seal"),
    ("not-json", "not a JSON object"),
])
def test_each_damage_format_1_can_see_is_caught(log: Path, damage: str, expected: str) -> None:
    lines = _lines(log)
    i = _change_line(lines)
    if damage == "delete":
        del lines[i]
    elif damage == "swap":
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
    elif damage in ("rehash", "rehash-and-link"):
        prev = TAIL.search(lines[i - 1]).group(1)  # type: ignore[union-attr]
        lines[i], digest = _rehash(lines[i].replace('"new":"', '"new":"x', 1), prev)
        if damage == "rehash-and-link":
            lines[i + 1], _ = _rehash(lines[i + 1], digest)
    elif damage == "cut":
        lines = lines[:i + 1]
    else:
        lines[i] = lines[i][:-5]
    _write(log, lines)
    found = verify_format1(log)
    assert not found["ok"] and expected in found["problem"], found


def test_what_format_1_cannot_prove_a_whole_rewrite_passes(log: Path) -> None:
    """The limit the one-line note states: an edit in the first run with every hash, link and seal
    digest redone verifies, even against the last manifest (nothing is keyed, and the later lines'
    hashes do not cover 'prev', so the head stays the same)."""
    from crmtool.audit.legacy import _Digest

    lines = _lines(log)
    i = _change_line(lines)
    lines[i] = lines[i].replace('"new":"', '"new":"x', 1)
    prev = "0" * 64
    digests: dict[str, _Digest] = {}
    for j, line in enumerate(lines):
        entry = json.loads(line)
        digest = digests.setdefault(entry["run"], _Digest())
        if entry["type"] == "seal":
            line = line.replace(entry["digest"], digest.hexdigest())
        lines[j], prev = _rehash(line, prev)
        if entry["type"] != "seal":
            digest.add(prev)
    _write(log, lines)
    assert json.loads(lines[i])["run"] != json.loads(lines[-1])["run"]
    assert verify_format1(log, _head("manifest-2.json"))["ok"]
