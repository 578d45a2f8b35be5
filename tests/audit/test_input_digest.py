"""clean's input SHA-256, read on a helper thread while the rules run (InputDigest): the manifest
and the run's header name the file's real digest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from crmtool.api import clean
from crmtool.audit import iter_entries
from crmtool.clean_audit import InputDigest
from crmtool.workspace import Workspace

from .conftest import EXAMPLE, KEY, RULES


def test_manifest_and_run_header_name_the_input_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMTOOL_KEY", KEY)
    data = tmp_path / "clientes.csv"
    data.write_bytes(EXAMPLE.read_bytes())
    expected = hashlib.sha256(data.read_bytes()).hexdigest()
    with Workspace(":memory:") as ws:
        clean(ws, data, [RULES / "10-normalise.yaml", RULES / "20-checks.yaml"], tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["inputs"][0]["sha256"] == expected
    assert manifest["inputs"][0]["path"] == str(data)
    assert sorted(manifest["inputs"][0]) == ["delimiter", "encoding", "format", "path", "rows", "sha256"]
    header = next(e for e in iter_entries(tmp_path / "out" / "crmtool.audit") if e["type"] == "run")
    assert header["input_sha256"] == expected


def test_input_digest_reads_on_another_thread_and_raises_what_the_read_raised(tmp_path: Path) -> None:
    data = tmp_path / "big.bin"
    data.write_bytes(b"x" * (3 << 20))
    digest = InputDigest(data)
    assert digest._thread.name == "crmtool-input-digest"
    assert digest.result() == hashlib.sha256(data.read_bytes()).hexdigest()
    with pytest.raises(FileNotFoundError):
        InputDigest(tmp_path / "missing.csv").result()
