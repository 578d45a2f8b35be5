"""The audit log proves itself: every kind of tampering is caught and named; no personal data in clear."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crmtool.api import CleanResult, clean
from crmtool.audit import GENESIS, AuditWriter, line_hash, split_line, verify_log
from crmtool.cli import app
from crmtool.keys import KeyedHasher
from crmtool.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "clientes.csv"
RULES = ROOT / "rules"
KEY = "audit-test-key-0123456789abcdef"


def _log(path: Path, runs: int = 1, entries: int = 4) -> Path:
    for r in range(runs):
        writer = AuditWriter(path, f"run-{r}")
        writer.add({"type": "run", "command": "test"})
        for i in range(entries):
            writer.add({"type": "change", "rule": f"rule{i % 2}", "row": i + 1, "field": "city",
                        "old": f"old{i}", "new": f"new{i}", "record": f"k:{i:032x}"})
        writer.seal({"counts": {"n": entries}})
    return path


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _put(path: Path, lines: list[str]) -> None:
    path.write_bytes("".join(lines).encode("utf-8", "surrogateescape"))


def _verify_cli(path: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", "verify", str(path), *extra])
    return result.exit_code, result.stdout


def test_clean_log_verifies(tmp_path: Path) -> None:
    path = _log(tmp_path / "a.jsonl", runs=2)
    result = verify_log(path)
    assert (result.ok, result.lines, result.runs, result.bad_line) == (True, 12, 2, 0)
    assert result.head == json.loads(_lines(path)[-1])["hash"]
    code, out = _verify_cli(path)
    assert code == 0
    assert out.startswith(f"{path}: ok, 12 entries in 2 runs, head {result.head}")


def test_chain_links_every_line_to_the_one_before(tmp_path: Path) -> None:
    lines = [ln.rstrip("\n") for ln in _lines(_log(tmp_path / "a.jsonl"))]
    entries = [json.loads(ln) for ln in lines]
    assert entries[0]["prev"] == GENESIS
    assert [e["prev"] for e in entries[1:]] == [e["hash"] for e in entries[:-1]]
    assert all(line_hash(split_line(ln)[0]) == e["hash"] for ln, e in zip(lines, entries, strict=True))
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert entries[-1]["type"] == "seal" and entries[-1]["entries"] == len(entries)


def _edit(lines: list[str]) -> list[str]:
    entry = json.loads(lines[2])
    entry["new"] = "tampered"
    lines[2] = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    return lines


def _edit_by_hand(lines: list[str]) -> list[str]:
    lines[2] = lines[2].replace('"new1"', '"NEW1"')
    return lines


def _edit_last(lines: list[str]) -> list[str]:
    lines[-1] = lines[-1].replace('"n":4', '"n":5')
    return lines


def _delete(lines: list[str]) -> list[str]:
    del lines[2]
    return lines


def _insert(lines: list[str]) -> list[str]:
    forged = json.loads(lines[1])
    forged["row"] = 99
    lines.insert(2, json.dumps(forged, sort_keys=True, separators=(",", ":")) + "\n")
    return lines


def _insert_copy(lines: list[str]) -> list[str]:
    lines.insert(2, lines[1])
    return lines


def _swap(lines: list[str]) -> list[str]:
    lines[2], lines[3] = lines[3], lines[2]
    return lines


def _truncate_mid_line(lines: list[str]) -> list[str]:
    lines[-1] = lines[-1][:25]
    return lines


def _drop_seal(lines: list[str]) -> list[str]:
    return lines[:-1]


def _not_utf8(lines: list[str]) -> list[str]:
    lines[3] = lines[3].replace('"new2"', '"new\udcff"')  # written with surrogateescape: byte 0xff
    return lines


def _blank_line(lines: list[str]) -> list[str]:
    lines.insert(3, "\n")
    return lines


TAMPERING = {
    "edit": (_edit, 3, "edited"),
    "edit_by_hand": (_edit_by_hand, 3, "edited"),
    "edit_last_line": (_edit_last, 6, "edited"),
    "delete": (_delete, 3, "chain broken"),
    "insert_forged": (_insert, 3, "edited"),
    "insert_copy": (_insert_copy, 3, "chain broken"),
    "swap": (_swap, 3, "chain broken"),
    "truncated_mid_line": (_truncate_mid_line, 6, "not a JSON object"),
    "seal_cut_off": (_drop_seal, 5, "has no seal"),
    "blank_line": (_blank_line, 4, "not a JSON object"),
    "not_utf8": (_not_utf8, 4, "not UTF-8 text"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampering_is_caught_and_the_first_bad_line_named(tmp_path: Path, case: str) -> None:
    tamper, bad_line, problem = TAMPERING[case]
    path = _log(tmp_path / "a.jsonl")
    _put(path, tamper(_lines(path)))
    result = verify_log(path)
    assert not result.ok
    assert result.bad_line == bad_line
    assert problem in result.problem
    code, out = _verify_cli(path)
    assert code == 1
    assert out.startswith(f"{path}:{bad_line}: ")
    code, out = _verify_cli(path, "--format", "json")
    assert code == 1
    assert json.loads(out)["bad_line"] == bad_line


def test_tampering_in_an_earlier_run_of_a_longer_log(tmp_path: Path) -> None:
    path = _log(tmp_path / "a.jsonl", runs=3)
    lines = _lines(path)
    lines[7], lines[8] = lines[8], lines[7]  # lines 8 and 9: the second run's first entries
    _put(path, lines)
    assert verify_log(path).bad_line == 8


def test_a_whole_run_cut_off_is_caught_with_the_manifest_head(tmp_path: Path) -> None:
    path = _log(tmp_path / "a.jsonl", runs=2)
    head = verify_log(path).head
    _put(path, _lines(path)[:6])  # the second run is gone, the first still sealed
    assert verify_log(path).ok  # the chain alone cannot see it ...
    result = verify_log(path, expected_head=head)  # ... the head from the manifest can
    assert not result.ok and "head hash differs" in result.problem
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"audit": {"head_sha256": head}}), encoding="utf-8")
    assert _verify_cli(path, "--manifest", str(manifest))[0] == 1
    assert _verify_cli(path, "--head", head)[0] == 1


def test_appending_a_second_run_continues_the_chain(tmp_path: Path) -> None:
    path = _log(tmp_path / "a.jsonl")
    before = _lines(path)
    head = verify_log(path).head
    writer = AuditWriter(path, "second")
    writer.add({"type": "run"})
    new_head = writer.seal()
    after = _lines(path)
    assert after[: len(before)] == before  # earlier lines never rewritten
    second = json.loads(after[len(before)])
    assert (second["prev"], second["seq"], second["run"]) == (head, len(before) + 1, "second")
    result = verify_log(path)
    assert (result.ok, result.runs, result.head) == (True, 2, new_head)


def test_appending_to_a_log_with_a_broken_tail_is_refused(tmp_path: Path) -> None:
    from crmtool.errors import InputError

    path = _log(tmp_path / "a.jsonl")
    _put(path, _truncate_mid_line(_lines(path)))
    with pytest.raises(InputError, match="not a crmtool audit entry"):
        AuditWriter(path, "next")
    with path.open("ab") as fh:
        fh.write(b"\xff\xfe\n")  # not even UTF-8
    with pytest.raises(InputError, match="not a crmtool audit entry"):
        AuditWriter(path, "next")


def test_verify_missing_log_is_exit_2(tmp_path: Path) -> None:
    code, _ = _verify_cli(tmp_path / "nope.jsonl")
    assert code == 2


# --- a real clean run on the example ---------------------------------------------------------

@pytest.fixture(scope="module")
def cleaned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CleanResult, Path]]:
    root = tmp_path_factory.mktemp("audit_clean")
    key_file = root / "test.key"
    key_file.write_text(KEY + "\n", encoding="utf-8")
    with Workspace(":memory:", key_file=key_file) as ws:
        result = clean(ws, EXAMPLE, [RULES], root / "out")
    yield result, key_file


def _example_values() -> set[str]:
    text = EXAMPLE.read_bytes().decode("cp1252")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    personal = ["customer_id", "first_name", "last_name", "email", "phone", "national_id", "birth_date",
                "postal_code", "city"]
    values = {(row.get(c) or "").strip() for row in rows for c in personal}
    return {v for v in values if len(v) >= 4}


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif obj is not None:
        yield str(obj)


def test_no_personal_value_of_the_example_in_clear(cleaned: tuple[CleanResult, Path]) -> None:
    result, _ = cleaned
    values = _example_values()
    # the cleaned forms too (title case, E.164, lower-case emails, ISO dates)
    with result.outputs["clean"].open(encoding="utf-8", newline="") as fh:
        clean_rows = list(csv.DictReader(fh))
    columns = ("customer_id", "first_name", "last_name", "email", "phone", "national_id", "birth_date")
    values |= {(row[c] or "").strip().lstrip("'") for row in clean_rows for c in columns
               if len((row[c] or "").strip()) >= 4}
    assert len(values) > 1000
    audit_text = result.outputs["audit"].read_text(encoding="utf-8")
    manifest_text = result.outputs["manifest"].read_text(encoding="utf-8")
    found = [s for line in audit_text.splitlines() for s in _strings(json.loads(line)) if s in values]
    found += [s for s in _strings(json.loads(manifest_text)) if s in values]
    assert found == []
    # and no email address or phone number as a substring anywhere
    lowered = (audit_text + manifest_text).lower()
    assert [v for v in values if ("@" in v or v.startswith("+")) and v.lower() in lowered] == []
    entries = [json.loads(line) for line in audit_text.splitlines()]
    changes = [e for e in entries if e["type"] == "change"]
    assert changes and all(e["record"].startswith("k:") for e in changes)
    assert all(e["old"].startswith("k:") for e in changes if e["field"] in ("email", "phone", "last_name"))


def test_clean_run_log_verifies_against_its_manifest(cleaned: tuple[CleanResult, Path]) -> None:
    result, _ = cleaned
    manifest = result.outputs["manifest"]
    code, out = _verify_cli(result.outputs["audit"], "--manifest", str(manifest))
    assert code == 0, out
    assert json.loads(manifest.read_text(encoding="utf-8"))["audit"]["head_sha256"] == result.audit_head


def _show(log: Path, key_file: Path, *args: str) -> list[dict[str, Any]]:
    res = CliRunner().invoke(app, ["audit", "show", str(log), "--key-file", str(key_file), *args])
    assert res.exit_code == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


def test_audit_show_filters(cleaned: tuple[CleanResult, Path], tmp_path: Path) -> None:
    result, key_file = cleaned
    log = tmp_path / "audit.jsonl"
    shutil.copy(result.outputs["audit"], log)
    everything = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    hasher = KeyedHasher(KEY.encode(), "test")

    by_rule = _show(log, key_file, "--rule", "phone_e164")
    assert by_rule and len(by_rule) == sum(1 for e in everything if e.get("rule") == "phone_e164")
    assert {e["rule"] for e in by_rule} == {"phone_e164"}

    by_run = _show(log, key_file, "--run", result.run_id)
    assert by_run == [e for e in everything if e["run"] == result.run_id]  # the dedupe run follows it
    assert _show(log, key_file, "--run", "no-such-run") == []

    by_record = _show(log, key_file, "--record", "C0000004")
    assert by_record
    assert {e["record"] for e in by_record} == {"k:" + str(hasher.token("C0000004"))}
    assert {e["field"] for e in by_record} >= {"first_name", "last_name"}  # NÃºria, '  del Río Silva '

    both = _show(log, key_file, "--record", "C0000004", "--rule", "repair_mojibake")
    assert [e["field"] for e in both] == ["first_name"]


def test_audit_show_never_creates_a_key(cleaned: tuple[CleanResult, Path], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    result, _ = cleaned
    monkeypatch.delenv("CRMTOOL_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["audit", "show", str(result.outputs["audit"]), "--record", "C0000004",
                                   "--workspace", str(tmp_path / "ws.duckdb")])
    assert res.exit_code == 2
    assert "no key configured" in res.stderr
    assert list(tmp_path.iterdir()) == []
    # without --record no key is needed
    res = CliRunner().invoke(app, ["audit", "show", str(result.outputs["audit"]), "--rule", "repair_mojibake",
                                   "--workspace", str(tmp_path / "ws.duckdb")])
    assert res.exit_code == 0 and res.stdout.count("\n") == 10


def test_re_hashing_an_edited_line_and_patching_the_link_is_caught_by_the_seal(tmp_path: Path) -> None:
    path = _log(tmp_path / "a.jsonl")
    lines = [ln.rstrip("\n") for ln in _lines(path)]
    body, _old_hash, link = split_line(lines[2]) or ("", "", "")
    forged_body = body.replace('"new1"', '"NEW1"')
    forged_hash = line_hash(forged_body)
    lines[2] = f'{forged_body[:-1]},"hash":"{forged_hash}","prev":"{link}"}}'
    next_body, next_hash, _ = split_line(lines[3]) or ("", "", "")
    lines[3] = f'{next_body[:-1]},"hash":"{next_hash}","prev":"{forged_hash}"}}'
    _put(path, [ln + "\n" for ln in lines])
    result = verify_log(path)
    assert not result.ok
    assert result.bad_line == 6 and "re-hashed" in result.problem


TRICKY_VALUES = ["plain", "Muñoz", 'quote " and \\ backslash', "new\nline", "cr\rhere", "tab\tx", "\x01ctrl\x1f",
                 "emoji 🙂", "", None, "'single'", ",\"hash\":\"" + "0" * 64 + "\"}"]


def test_bulk_entries_with_tricky_values_verify_and_read_back(tmp_path: Path) -> None:
    import duckdb
    import pyarrow as pa

    from crmtool.audit import iter_entries, json_str_sql

    path = tmp_path / "a.jsonl"
    writer = AuditWriter(path, "bulk")
    writer.add({"type": "run"})
    with duckdb.connect() as con:
        con.register("vals", pa.table({"i": pa.array(range(len(TRICKY_VALUES)), pa.int64()),
                                       "v": pa.array(TRICKY_VALUES, pa.string())}))
        n = writer.add_query(con, f"""SELECT i, '"type":"change","i":' || i || ',"old":' || {json_str_sql('v')}
                                      AS members FROM vals""", order_by="i")
    writer.seal()
    assert n == len(TRICKY_VALUES)
    result = verify_log(path)
    assert result.ok, result.problem
    assert result.lines == len(TRICKY_VALUES) + 2
    changes = [e for e in iter_entries(path) if e["type"] == "change"]
    assert [e["old"] for e in changes] == TRICKY_VALUES


@pytest.mark.parametrize("garbage", [b"\xff\xfe garbage\n", b'{"broken\n', b"[1, 2]\n"])
def test_audit_show_on_a_damaged_log_is_exit_2_naming_the_line(tmp_path: Path, garbage: bytes) -> None:
    path = _log(tmp_path / "a.jsonl")
    with path.open("ab") as fh:
        fh.write(garbage)
    res = CliRunner().invoke(app, ["audit", "show", str(path), "--rule", "rule0"])
    assert res.exit_code == 2
    assert f"{path}:7: not a crmtool audit entry" in res.stderr
    assert "Traceback" not in res.output
