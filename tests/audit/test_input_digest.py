"""clean's input SHA-256, read on a helper thread while the rules run (crmtool.io.digests, which
segment uses too): the manifest and the run's header name the file's real digest."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from crmtool.api import clean
from crmtool.audit import iter_entries
from crmtool.io.digests import THREAD_NAME, FileDigests
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


def test_file_digests_read_on_another_thread_and_raise_what_the_read_raised(tmp_path: Path) -> None:
    data = tmp_path / "big.bin"
    data.write_bytes(b"x" * (3 << 20))
    missing = tmp_path / "missing.csv"
    digests = FileDigests([data, missing])
    try:
        assert [t.name for t in threading.enumerate() if t.name.startswith(THREAD_NAME)]
        assert digests.sha256(data) == hashlib.sha256(data.read_bytes()).hexdigest()
        with pytest.raises(FileNotFoundError):
            digests.sha256(missing)
        assert digests.sha256(tmp_path / "never-handed-in.csv") is None
    finally:
        digests.close()
