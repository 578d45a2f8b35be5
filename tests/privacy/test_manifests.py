"""One manifest model: clean, segment, export, erase and retention on examples/ write the same common
keys (:data:`crmtool.manifest.COMMON_KEYS`) with the same meaning, checked against ``crm_runs``."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

import crmtool
from crmtool.io.readers import file_sha256
from crmtool.manifest import COMMON_KEYS
from crmtool.status import Status

from .conftest import EXAMPLES, ROOT, RULES, cli

UTC_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _run_all(tmp_path: Path) -> tuple[Path, dict[str, dict[str, Any]]]:
    """Run the five commands in order on one workspace; return it and each command's manifest.

    ``segment`` runs last: ``retention apply`` after a segment run stops on the NOT NULL
    ``customer_id`` of ``segments_membership`` (a known fault, not what this test is about)."""
    db, out = tmp_path / "crm.duckdb", tmp_path / "out"
    w = ("-w", db)
    steps = {
        "clean": (("clean", EXAMPLES / "clientes.csv", "--rules", RULES, "--out", out, *w), out / "manifest.json"),
        "export": (("export", out / "clientes.clean.csv", "--policy", EXAMPLES / "policy-support.yaml",
                    "--out", out / "support.csv", *w), out / "support.csv.manifest.json"),
        "erase": (("erase", "--requests", EXAMPLES / "erasure-requests.csv", "--out", out, *w),
                  out / "erase.manifest.json"),
        "retention": (("retention", "apply", "-r", RULES, "--out", out, "--as-of", "2026-11-01", *w),
                      out / "retention.manifest.json"),
        "segment": (("segment", "run", EXAMPLES / "clientes.csv", "--segments", ROOT / "segments.yaml",
                     "--orders", EXAMPLES / "pedidos.csv", "--events", EXAMPLES / "eventos.csv",
                     "--out", out / "seg", "--as-of", "2026-11-01", *w), out / "seg" / "segments.manifest.json"),
    }
    manifests = {}
    for command, (args, manifest) in steps.items():
        code, output = cli(*args)
        assert code in (0, 1), f"{command}: {output}"
        manifests[command] = json.loads(manifest.read_text(encoding="utf-8"))
    return db, manifests


def test_every_command_writes_the_common_manifest_keys_with_one_meaning(tmp_path: Path) -> None:
    db, manifests = _run_all(tmp_path)
    con = duckdb.connect(str(db), read_only=True)
    try:
        runs = {r[0]: (r[1], r[2]) for r in con.execute("SELECT run_id, command, status FROM crm_runs").fetchall()}
    finally:
        con.close()
    assert len({m["run_id"] for m in manifests.values()}) == len(manifests)
    for command, m in manifests.items():
        missing = [k for k in COMMON_KEYS if k not in m]
        assert not missing, f"{command}: no {missing}"
        assert "read" not in m and "wrote" not in m, command
        assert (m["tool"], m["version"], m["command"]) == ("crmtool", crmtool.__version__, command)
        # the run the manifest names is the command's row in crm_runs, with the same status word
        assert runs[m["run_id"]] == (command, m["status"]), command
        assert m["status"] in {s.value for s in Status}
        assert UTC_STAMP.fullmatch(m["started_at"]) and UTC_STAMP.fullmatch(m["finished_at"]), command
        assert datetime.fromisoformat(m["started_at"]) <= datetime.fromisoformat(m["finished_at"])
        assert isinstance(m["timings_seconds"], dict), command  # export times no step of its own: {}
        assert all(isinstance(v, int | float) and v >= 0 for v in m["timings_seconds"].values()), command
        assert isinstance(m["inputs"], list) and m["inputs"], command
        for entry in m["inputs"]:
            path = Path(entry["path"])
            if path.is_file() and path.resolve().is_relative_to(ROOT):  # files of the repository do not change
                assert entry["sha256"] == file_sha256(path), f"{command}: {path}"
        assert isinstance(m["outputs"], list), command
        for entry in m["outputs"]:
            assert isinstance(entry["path"], str) and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]), command
    # what each command read, by name: a file crmtool may name is named with its hash
    assert [Path(e["path"]).name for e in manifests["segment"]["inputs"]] == [
        "clientes.csv", "pedidos.csv", "eventos.csv", "segments.yaml"]
    assert [Path(e["path"]).name for e in manifests["clean"]["inputs"]] == ["clientes.csv"]
    assert [Path(e["path"]).name for e in manifests["export"]["inputs"]] == ["clientes.clean.csv"]
    assert [Path(e["path"]).name for e in manifests["retention"]["inputs"]] == sorted(
        p.name for p in RULES.glob("*.yaml"))
    assert all(manifests[c]["timings_seconds"] for c in ("clean", "segment", "erase", "retention"))
    assert "sha256" not in manifests["erase"]["inputs"][0]  # the request file holds personal data
    assert manifests["export"]["outputs"][0]["path"].endswith("support.csv")
    # the segment run comes last: what it wrote is still as its manifest says
    for entry in manifests["segment"]["outputs"]:
        assert entry["sha256"] == file_sha256(Path(entry["path"])), entry["path"]
