"""Forgery suite: every attack on a real log is caught by ``audit verify`` and named, with and
without a manifest; an older manifest on the intact, longer log verifies as a prefix."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from crmtool.audit import verify_log
from crmtool.audit.format import CHAIN, HEAD, decode, encode, head_mac
from crmtool.cli import app
from crmtool.keys import KeyedHasher

from .conftest import KEY

HASHER = KeyedHasher(KEY.encode(), "test")
ATTACKER = b"attacker-key-not-the-workspace-key"  # a forger without the key makes seals with another


def _records(log: Path) -> list[str]:
    return (log / CHAIN).read_text(encoding="utf-8").splitlines(keepends=True)


def _put(log: Path, lines: list[str]) -> None:
    (log / CHAIN).write_text("".join(lines), encoding="utf-8")


def _rechain(log: Path, bodies: list[dict], key: bytes = ATTACKER) -> None:
    """Write ``bodies`` as a chain whose hashes and links are all right (seals made with ``key``),
    and a HEAD that matches it: everything a forger without the workspace key can do."""
    prev, lines = "0" * 64, []
    for seq, body in enumerate(bodies, start=1):
        line, prev = encode({**body, "seq": seq, "prev": prev}, key)
        lines.append(line)
    _put(log, lines)
    head = {"format": "crmtool-audit/2", "run": bodies[-1]["run"], "seq": len(bodies), "hash": prev,
            "size": (log / CHAIN).stat().st_size}
    head["mac"] = head_mac(key, head)
    (log / HEAD).write_text(json.dumps(head), encoding="utf-8")


def _bodies(log: Path) -> list[dict]:
    out = []
    for line in _records(log):
        body, _h, _m = decode(line)
        body.pop("seq")
        body.pop("prev")
        out.append(body)
    return out


def _runs(bodies: list[dict]) -> list[list[dict]]:
    runs: list[list[dict]] = []
    for b in bodies:
        if b["type"] == "run":
            runs.append([])
        runs[-1].append(b)
    return runs


def _first_set(log: Path) -> Path:
    return sorted((log / "sets").glob("*.changes.0.parquet"))[0]


def _rewrite_set(path: Path, sql: str) -> None:
    """Rewrite a change set through DuckDB with ``sql`` over ``t`` (the original rows)."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{path}')")
    con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet, COMPRESSION zstd)")
    con.close()


# --- the attacks -----------------------------------------------------------------------------

def edit_record(log: Path) -> None:
    lines = _records(log)
    lines[0] = lines[0].replace('"command":"clean"', '"command":"cleam"')
    _put(log, lines)


def edit_and_rehash_everything(log: Path) -> None:
    bodies = _bodies(log)
    bodies[0]["erased_dropped"] = 7
    _rechain(log, bodies)


def insert_record(log: Path) -> None:
    lines = _records(log)
    lines.insert(1, lines[0])
    _put(log, lines)


def insert_record_rehashed(log: Path) -> None:
    bodies = _bodies(log)
    bodies.insert(1, {**bodies[0], "type": "erasure", "identifier": "k:" + "0" * 32})
    _rechain(log, bodies)


def delete_record(log: Path) -> None:
    lines = _records(log)
    del lines[1]
    _put(log, lines)


def delete_record_rehashed(log: Path) -> None:
    bodies = _bodies(log)
    del bodies[1]
    bodies[1]["records"] = 1  # the seal's count, fixed by hand
    _rechain(log, bodies)


def reorder_records(log: Path) -> None:
    lines = _records(log)
    lines[0], lines[1] = lines[1], lines[0]
    _put(log, lines)


def reorder_runs(log: Path) -> None:
    lines = _records(log)
    _put(log, lines[2:4] + lines[0:2] + lines[4:])


def reorder_runs_rehashed(log: Path) -> None:
    runs = _runs(_bodies(log))
    _rechain(log, [b for run in [runs[1], runs[0], *runs[2:]] for b in run])


def truncate_last_run(log: Path) -> None:
    _put(log, _records(log)[:-2])


def truncate_mid_run(log: Path) -> None:
    _put(log, _records(log)[:-1])


def truncate_mid_record(log: Path) -> None:
    lines = _records(log)
    _put(log, [*lines[:-1], lines[-1][:40]])


def truncate_and_forge_head(log: Path) -> None:
    bodies = _bodies(log)[:-2]
    _rechain(log, bodies)


def forged_appended_run(log: Path) -> None:
    bodies = _bodies(log)
    extra = [dict(b, run="20991231T000000Z-ffffff") for b in _runs(bodies)[-1]]
    _rechain(log, bodies + extra)


def forged_appended_run_plain(log: Path) -> None:
    """Appended records that link, with the last seal's mac copied over."""
    lines = _records(log)
    last_body, last_hash, mac = decode(lines[-1])
    prev, seq, new = last_hash, last_body["seq"], []
    for line in lines[-2:]:
        body, _h, _m = decode(line)
        seq += 1
        text, prev = encode({**body, "run": "20991231T000000Z-ffffff", "seq": seq, "prev": prev}, ATTACKER)
        new.append(text.replace(text[text.index('"mac":"') + 7:][:64], mac or "") if '"mac"' in text else text)
    _put(log, lines + new)


def edit_change(log: Path) -> None:
    _rewrite_set(_first_set(log), "SELECT * REPLACE (CASE WHEN row_number() OVER () = 3 THEN '\"x\"' ELSE new END "
                                   "AS new) FROM t")


def reorder_changes(log: Path) -> None:
    _rewrite_set(_first_set(log), "SELECT * FROM t ORDER BY record DESC")


def delete_change(log: Path) -> None:
    _rewrite_set(_first_set(log), "SELECT * FROM t LIMIT (SELECT count(*) - 1 FROM t)")


def insert_change(log: Path) -> None:
    _rewrite_set(_first_set(log), "SELECT * FROM t UNION ALL (SELECT * FROM t LIMIT 1)")


def delete_change_set(log: Path) -> None:
    _first_set(log).unlink()


def swap_change_sets(log: Path) -> None:
    """Two parts of a run's change set trade places (two runs of the same export have the same
    change set, byte for byte, so trading those would change nothing)."""
    first = _first_set(log)
    run = first.name.split(".")[0]
    # two files of the run that differ (parts can be alike: e.g. empty when the rare part holds all)
    second = next(p for p in sorted((log / "sets").glob(f"{run}.changes.*.parquet"))
                  if p.read_bytes() != first.read_bytes())
    tmp = first.with_suffix(".swap")
    first.rename(tmp)
    second.rename(first)
    tmp.rename(second)


def insert_change_set(log: Path) -> None:
    shutil.copy(_first_set(log), log / "sets" / "20991231T000000Z-ffffff.changes.0.parquet")


def delete_head(log: Path) -> None:
    (log / HEAD).unlink()


def forge_head_for_shorter_chain(log: Path) -> None:
    """Cut the last run and write a HEAD for the shorter chain without the key."""
    lines = _records(log)[:-2]
    _put(log, lines)
    body, digest, _ = decode(lines[-1])
    head = {"format": "crmtool-audit/2", "run": body["run"], "seq": body["seq"], "hash": digest,
            "size": (log / CHAIN).stat().st_size}
    head["mac"] = head_mac(ATTACKER, head)
    (log / HEAD).write_text(json.dumps(head), encoding="utf-8")


ATTACKS: dict[str, tuple[Callable[[Path], None], str, str]] = {
    # name: (attack, where the problem is named, words of the problem)
    "edit a record": (edit_record, f"{CHAIN}:1", "edited"),
    "edit and re-hash the whole chain": (edit_and_rehash_everything, f"{CHAIN}:2", "does not match the key"),
    "insert a record": (insert_record, f"{CHAIN}:2", "chain broken"),
    "insert a record, re-hashed": (insert_record_rehashed, f"{CHAIN}:3", "counts"),
    "delete a record": (delete_record, f"{CHAIN}:2", "chain broken"),
    "delete a record, re-hashed": (delete_record_rehashed, f"{CHAIN}:2", "inside run"),
    "reorder records": (reorder_records, f"{CHAIN}:1", "chain broken"),
    "reorder runs": (reorder_runs, f"{CHAIN}:1", "chain broken"),
    "reorder runs, re-hashed": (reorder_runs_rehashed, f"{CHAIN}:2", "does not match the key"),
    "truncate after a run": (truncate_last_run, HEAD, "cut off or appended"),
    "truncate inside a run": (truncate_mid_run, f"{CHAIN}:7", "no seal"),
    "truncate inside a record": (truncate_mid_record, f"{CHAIN}:8", "cut off"),
    "truncate, forge chain and HEAD": (truncate_and_forge_head, f"{CHAIN}:2", "does not match the key"),
    "append a forged run, re-hashed": (forged_appended_run, f"{CHAIN}:2", "does not match the key"),
    "append a run with a copied seal mac": (forged_appended_run_plain, f"{CHAIN}:10", "does not match the key"),
    "edit a change": (edit_change, "sets/", "was changed"),
    "reorder changes": (reorder_changes, "sets/", "was changed"),
    "delete a change": (delete_change, "sets/", "was changed"),
    "insert a change": (insert_change, "sets/", "was changed"),
    "delete a change set": (delete_change_set, "sets/", "missing"),
    "swap two parts of a change set": (swap_change_sets, "sets/", "was changed"),
    "insert a change set": (insert_change_set, "sets/20991231T000000Z-ffffff", "no seal lists"),
    "delete HEAD": (delete_head, HEAD, "missing"),
    "cut a run and forge HEAD": (forge_head_for_shorter_chain, HEAD, "does not match the key"),
}


def test_the_real_log_verifies_with_and_without_its_manifest(real_log: Path, log: Path) -> None:
    result = verify_log(log, HASHER)
    assert (result.ok, result.runs, result.records) == (True, 4, 8), result.problem
    assert result.rows > 3000  # two clean runs' changes and rejects
    last = json.loads((real_log / "last.json").read_text())["audit"]["head_sha256"]
    assert verify_log(log, HASHER, last).ok and not verify_log(log, HASHER, last).prefix


def test_an_older_manifest_on_the_intact_longer_log_verifies_as_a_prefix(real_log: Path, log: Path) -> None:
    res = CliRunner().invoke(app, ["audit", "verify", str(log), "--manifest", str(real_log / "first.json")])
    assert res.exit_code == 0, res.stdout
    assert "earlier seal" in res.stdout
    result = verify_log(log, HASHER, json.loads((real_log / "first.json").read_text())["audit"]["head_sha256"])
    assert result.ok and result.prefix


@pytest.mark.parametrize("with_manifest", [False, True], ids=["no manifest", "manifest"])
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_every_attack_is_caught_and_named(real_log: Path, log: Path, attack: str, with_manifest: bool) -> None:
    tamper, where, words = ATTACKS[attack]
    tamper(log)
    args = ["audit", "verify", str(log)]
    if with_manifest:
        args += ["--manifest", str(real_log / "last.json")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    assert res.stdout.startswith(f"{log / where}"), res.stdout
    assert words in res.stdout, res.stdout
    assert "Traceback" not in res.output


def test_a_rolled_back_log_passes_alone_but_not_against_the_newer_manifest(real_log: Path, log: Path) -> None:
    """The threat model's limit: whoever kept an old copy of the log (with its HEAD) can put it back;
    a manifest (or a copy of HEAD) kept elsewhere catches it."""
    shutil.rmtree(log)
    shutil.copytree(real_log / "after-first", log)
    assert verify_log(log, HASHER).ok
    res = CliRunner().invoke(app, ["audit", "verify", str(log), "--manifest", str(real_log / "last.json")])
    assert res.exit_code == 1
    assert "no seal of this log" in res.stdout


def test_another_key_fails_the_seals_and_no_key_is_said_plainly(log: Path) -> None:
    wrong = verify_log(log, KeyedHasher(b"another-key-0123456789", "test"))
    assert not wrong.ok and "does not match the key" in wrong.problem
    res = CliRunner().invoke(app, ["audit", "verify", str(log), "--no-key"])
    assert res.exit_code == 0 and "seals NOT checked" in res.stdout
    # unkeyed checks still catch an edit
    edit_change(log)
    assert CliRunner().invoke(app, ["audit", "verify", str(log), "--no-key"]).exit_code == 1


def test_verify_json_names_the_problem(log: Path) -> None:
    delete_record(log)
    res = CliRunner().invoke(app, ["audit", "verify", str(log), "--format", "json"])
    payload = json.loads(res.stdout)
    assert res.exit_code == 1
    assert payload["ok"] is False and payload["where"] == f"{CHAIN}:2" and "chain broken" in payload["problem"]
