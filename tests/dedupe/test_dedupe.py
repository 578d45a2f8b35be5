"""Dedupe: spec parsing (errors with lines), comparisons, EM, clusters and chaining guard, survivorship,
decisions, explain, incremental runs, the CLI, and bad input. Tiny tables built in the tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from crmtool.dedupe.api import dedupe, explain
from crmtool.dedupe.model import run_em, settings_hash
from crmtool.dedupe.names import canonical_name, phonetic_key
from crmtool.dedupe.spec import spec_from_text
from crmtool.errors import ConfigError, InputError
from crmtool.workspace import Workspace

SPEC = """
dedupe:
  id: id
  blocking:
    - {name: email, on: ["email:email"]}
    - {name: phone, on: ["phone:phone"]}
    - {name: surname_dob, on: ["last:phonetic", "dob:date"]}
    - {name: swapped, on: ["first:phonetic", "dob:date"]}
  comparisons:
    - {column: first, method: name, swap_with: last}
    - {column: last, method: surname, swap_with: first, term_frequency: true}
    - {column: dob, method: date}
    - {column: email, method: email}
    - {column: phone, method: phone}
  veto: [first, dob]
  threshold: 0.9
  review: 0.3
  model: {estimate: fixed}
  survivorship:
    default: most_complete
    recency: updated
    fields:
      email: most_recent
      phone: longest
    consent: [consent]
"""
# fixed weights keep these engine tests exact; EM is tested on its own below
WEIGHTS = {"first": "[6, 6, 5, 4, 2, -8]", "last": "[5, 5, 4, 3, 1, -4]", "dob": "[7, 5, 4, -8]",
           "email": "[9, 4, 2, -1]", "phone": "[8, 6, 4, -1]"}


def spec_text(extra: str = "") -> str:
    text = SPEC
    for col, w in WEIGHTS.items():
        text = text.replace(f"{{column: {col}, method:", f"{{column: {col}, weights: {w}, method:", 1)
    return text + extra


COLS = ["id", "first", "last", "dob", "email", "phone", "updated", "consent"]
ROWS = [
    ["1", "Francisco", "García López", "10/07/1985", "paco.garcia@gmail.com", "600 123 456", "2023-01-01", "yes"],
    ["2", "FRANCISCO", "Garcia Lopez", "1985-07-10", "Paco.Garcia@gmail.com", "+34600123456", "2024-01-01", "no"],
    ["3", "García López", "Francisco", "10/07/1985", "", "600123456", "2022-01-01", "yes"],  # swapped names
    ["4", "Lucía", "García López", "10/07/1985", "", "600123456", "2022-01-01", "yes"],  # twin: never merged
    ["5", "William", "Smith", "02/03/1970", "bill@x.com", "", "2020-01-01", ""],
    ["6", "Bill", "Smith", "03/02/1970", "bill@x.com", "", "2021-01-01", "yes"],  # nickname + day/month swap
    ["7", "Анна", "Иванова", "01/01/1990", "anna@x.ru", "", "2020-01-01", ""],  # other scripts
    ["8", "Анна", "Иванова", "01/01/1990", "anna@x.ru", "", "2020-01-01", ""],
]


def table(ws: Workspace, rows: list[list[str]], name: str = "people") -> str:
    data = {c: pa.array([r[i] or None for r in rows], pa.string()) for i, c in enumerate(COLS)}
    ws.con.register("__t", pa.table(data))
    ws.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM __t")
    ws.con.unregister("__t")
    return name


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def clusters(ws: Workspace) -> dict[str, str]:
    return dict(ws.con.execute("SELECT record_id, cluster_id FROM dedupe_records").fetchall())


# --- parsing ------------------------------------------------------------------------------------

def test_spec_parses_with_levels() -> None:
    spec = spec_from_text(spec_text())
    assert spec.id_column == "id"
    assert [b.name for b in spec.blocking] == ["email", "phone", "surname_dob", "swapped"]
    first = spec.comparisons[0]
    assert first.levels == ("exact", "swapped", "nickname", "jw>=0.92", "jw>=0.8|phonetic", "else")
    assert spec.veto == (("first", 4), ("dob", 2))  # worst level still allowed: else vetoes


def test_spec_errors_carry_lines() -> None:
    bad = """dedupe:
  id: id
  blocking:
    - {name: a, on: ["email:soundex"]}
  comparisons:
    - {column: first, method: name, weights: [1, 2]}
  veto: [nope]
  threshold: 0.5
  review: 0.8
"""
    with pytest.raises(ConfigError) as err:
        spec_from_text(bad, "r.yaml")
    text = str(err.value)
    assert "r.yaml:4: dedupe: blocking 'a': unknown transform 'soundex'" in text
    assert "r.yaml:6: dedupe: comparison 'first': 5 weights expected" in text
    assert "r.yaml:7: dedupe: veto names unknown comparison 'nope'" in text
    assert "r.yaml:9: dedupe: review band starts at 0.8, above the threshold 0.5" in text


def test_schema_error_has_line() -> None:
    with pytest.raises(ConfigError, match=r"r.yaml:5: dedupe: comparisons/0/method: expected one of"):
        spec_from_text("dedupe:\n  id: id\n  blocking: [{name: a, on: [x]}]\n  comparisons:\n"
                       "    - {column: x, method: fuzzy}\n", "r.yaml")


def test_rule_folder_with_dedupe_section_lints() -> None:
    from crmtool.rule_paths import dedupe_spec

    spec = dedupe_spec([Path(__file__).resolve().parents[2] / "rules"])
    assert spec.id_column == "customer_id"


# --- names and model ----------------------------------------------------------------------------

def test_phonetic_and_nicknames() -> None:
    assert phonetic_key("gonzalez") == phonetic_key("gonsales")
    assert phonetic_key("vazquez") == phonetic_key("basquez")
    assert phonetic_key("garcia") != phonetic_key("martinez")
    assert canonical_name("paco") == canonical_name("francisco") == "francisco"
    assert canonical_name("pepe") == "jose"
    assert canonical_name("bill") == "william"
    assert canonical_name("chema") == "jose maria"


def test_em_recovers_known_m_and_prior() -> None:
    # two comparisons of two levels (0 agree, 1 disagree); 20% matches with m=(0.9, 0.1), u=(0.1, 0.9)
    import itertools

    m, u, lam = [0.9, 0.1], [0.1, 0.9], 0.2
    patterns, counts = [], []
    for a, b in itertools.product((0, 1), repeat=2):
        p = lam * m[a] * m[b] + (1 - lam) * u[a] * u[b]
        patterns.append((a, b))
        counts.append(round(p * 100_000))
    est_m, est_lam, _ = run_em(patterns, counts, [u, u], 200)
    assert est_lam == pytest.approx(0.2, abs=0.01)
    assert est_m[0][0] == pytest.approx(0.9, abs=0.01)


# --- engine -------------------------------------------------------------------------------------

def test_dedupe_matches_variants_keeps_twins_apart(ws: Workspace, tmp_path: Path) -> None:
    spec = spec_from_text(spec_text())
    result = dedupe(ws, table(ws, ROWS), spec, tmp_path)
    got = clusters(ws)
    assert got["1"] == got["2"] == got["3"] == "1"  # case/accent/format variants + swapped names
    assert got["4"] == "4"  # twin sister: same surname, birth date and phone, different first name
    assert got["5"] == got["6"] == "5"
    assert got["7"] == got["8"] == "7"
    assert result.clusters.clusters == 4
    with (tmp_path / "clusters.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["record_id"] for r in rows] == [str(i) for i in range(1, 9)]
    review = list(read_csv(tmp_path / "review.csv"))
    assert {(r["id_l"], r["id_r"]) for r in review} >= {("1", "4")}
    assert all(r["reason"] in ("veto", "review_band", "chaining") for r in review)


def test_golden_survivorship(ws: Workspace, tmp_path: Path) -> None:
    dedupe(ws, table(ws, ROWS), spec_from_text(spec_text()), tmp_path)
    golden = {r["cluster_id"]: r for r in read_csv(tmp_path / "golden.csv")}
    g = golden["1"]
    assert g["record_ids"] == "1;2;3" and g["n_records"] == "3"
    assert g["email"] == "Paco.Garcia@gmail.com"  # most recent (2024)
    assert g["phone"] == "+34600123456"  # longest
    assert g["consent"] == "no"  # most restrictive wins over yes
    assert golden["5"]["consent"] == ""  # a blank consent is unknown: more restrictive than yes
    assert len(golden) == 4


def test_audit_entries_for_every_merge(ws: Workspace, tmp_path: Path) -> None:
    result = dedupe(ws, table(ws, ROWS), spec_from_text(spec_text()), tmp_path)
    from crmtool.audit import show, verify_log

    log = tmp_path / "crmtool.audit"
    entries = list(show(log))
    merges = [e for e in entries if e["type"] == "merge"]
    assert len(merges) == result.merges >= 4
    assert all(e[c].startswith("k:") for e in merges for c in ("record", "other", "cluster"))
    assert all(b"Paco" not in f.read_bytes() for f in log.rglob("*") if f.is_file())
    assert [e["type"] for e in entries if e["type"] != "merge"] == ["run", "seal"]
    assert verify_log(log, ws.hasher).ok


def test_decisions_are_honoured(ws: Workspace, tmp_path: Path) -> None:
    spec = spec_from_text(spec_text())
    decisions = tmp_path / "decisions.csv"
    decisions.write_text("id_l,id_r,decision\n1,4,match\n5,6,no-match\n7,8,whatever\n")
    warnings: list[str] = []
    result = dedupe(ws, table(ws, ROWS), spec, tmp_path / "out", decisions=decisions, warn=warnings.append)
    got = clusters(ws)
    assert got["4"] == got["1"]
    assert got["5"] != got["6"]
    assert result.decisions == {"match": 1, "no_match": 1, "unknown_ids": 0}
    assert any("other than match" in w for w in warnings)


def test_chaining_guard_splits_clusters(ws: Workspace, tmp_path: Path) -> None:
    # a -- b (same email) and b -- c (same phone) match, but a person decided a and c differ: no chain
    rows = [
        ["a", "Juan", "Pérez", "01/01/1980", "jp@x.com", "", "", ""],
        ["b", "Juan", "Pérez", "01/01/1980", "jp@x.com", "611111111", "", ""],
        ["c", "Juan", "Pérez", "01/01/1980", "", "611111111", "", ""],
    ]
    decisions = tmp_path / "d.csv"
    decisions.write_text("id_l,id_r,decision\na,c,no-match\n")
    result = dedupe(ws, table(ws, rows), spec_from_text(spec_text()), tmp_path, decisions=decisions)
    got = clusters(ws)
    assert result.clusters.split_clusters == 1
    assert got["a"] != got["c"]
    assert got["b"] in (got["a"], got["c"])
    review = read_csv(tmp_path / "review.csv")
    assert any(r["reason"] == "chaining" for r in review)


def test_explain_pair_and_single(ws: Workspace, tmp_path: Path) -> None:
    spec = spec_from_text(spec_text())
    dedupe(ws, table(ws, ROWS), spec, tmp_path)
    exp = explain(ws, spec, "1", "3")
    levels = {c.name: c.level for c in exp.comparisons}
    assert levels["first"] == "swapped" and levels["last"] == "swapped" and levels["dob"] == "exact"
    assert exp.same_cluster and exp.match_probability and exp.match_probability > 0.9
    twin = explain(ws, spec, "1", "4")
    assert twin.vetoed and not twin.same_cluster
    single = explain(ws, spec, "5")
    assert single.cluster_id == "5" and single.neighbours[0][0] == "6"
    with pytest.raises(InputError, match="not in the last dedupe run"):
        explain(ws, spec, "nope")


def test_explain_names_the_blocking_rule_of_a_pair_dedupe_pairs_does_not_keep(ws: Workspace, tmp_path: Path) -> None:
    """After a Spark run ``dedupe_pairs`` keeps only the pairs decided or at or above the review band;
    explain still names a candidate's first blocking rule, from the prepared table's keys."""
    from crmtool.dedupe.tables import PAIRS, PREP

    spec = spec_from_text(spec_text())
    dedupe(ws, table(ws, ROWS), spec, tmp_path)
    pairs = ws.con.execute(f"SELECT a.__id, b.__id, k.rule FROM {PAIRS} k JOIN {PREP} a ON a.__rid = k.l "
                           f"JOIN {PREP} b ON b.__rid = k.r WHERE k.rule >= 0 ORDER BY 1, 2").fetchall()
    stored = {(a, b): spec.blocking[r].name for a, b, r in pairs}
    assert len(stored) >= 4 and len(set(stored.values())) >= 2
    ws.con.execute(f"DELETE FROM {PAIRS}")
    assert {(a, b): explain(ws, spec, a, b).blocking_rule for a, b in stored} == stored
    assert all(explain(ws, spec, a, b).candidate for a, b in stored)
    apart = explain(ws, spec, "1", "7")  # no key in common
    assert apart.blocking_rule is None and not apart.candidate


def test_incremental_matches_new_rows_against_previous(ws: Workspace, tmp_path: Path) -> None:
    spec = spec_from_text(spec_text())
    dedupe(ws, table(ws, ROWS[:6]), spec, tmp_path / "day1")
    new = [*ROWS[:6], ["9", "Will", "Smith", "02/03/1970", "bill@x.com", "", "2025-01-01", ""]]
    result = dedupe(ws, table(ws, new), spec, tmp_path / "day2", incremental=True)
    assert result.incremental and result.fresh_records == 1
    got = clusters(ws)
    assert got["9"] == got["5"] == got["6"] == "5" and got["1"] == got["2"]


def test_incremental_after_row_hashes_of_an_older_version_matches_every_row_once(ws: Workspace,
                                                                                 tmp_path: Path) -> None:
    spec = spec_from_text(spec_text())
    dedupe(ws, table(ws, ROWS[:6]), spec, None)
    hashes = [r[0] for r in ws.con.execute("SELECT row_hash FROM dedupe_records").fetchall()]
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in hashes)  # SHA-256 hex, not an engine's hash()
    # what a version before SHA-256 kept: DuckDB's hash() of the row, as a decimal number
    ws.con.execute("UPDATE dedupe_records SET row_hash = '12345678901234567890'")
    warnings: list[str] = []
    result = dedupe(ws, table(ws, ROWS[:6]), spec, None, incremental=True, warn=warnings.append)
    assert result.incremental and result.fresh_records == 6
    assert warnings == ["incremental: the previous run kept 6 row hashes of an older version (DuckDB's hash()): "
                        "those records are matched again this once"]
    again = dedupe(ws, table(ws, ROWS[:6]), spec, None, incremental=True, warn=warnings.append)
    assert again.fresh_records == 0 and len(warnings) == 1


def test_u_sample_is_uniform_and_repeatable(ws: Workspace) -> None:
    from crmtool.dedupe.model import u_sample_sql

    pairs = ws.con.execute(f"SELECT l, r FROM ({u_sample_sql(1000, 20_000, 42, 'duckdb')})").fetchall()
    assert all(0 <= a < b < 1000 for a, b in pairs)
    # 20,000 draws from 499,500 pairs: about 400 repeats; neighbours (r = l + 1) about 40 (DuckDB's
    # hash(i, 42) and hash(i, 43) never gave neighbours
    # on 10,000 records, and repeated a pair 15 times as often as chance)
    assert 19_400 < len(pairs) < 19_800
    assert 15 < sum(1 for a, b in pairs if b == a + 1) < 80
    assert sorted(pairs) == sorted(ws.con.execute(u_sample_sql(1000, 20_000, 42, "duckdb")).fetchall())


def test_incremental_retrains_a_model_saved_before_the_household_group(ws: Workspace, tmp_path: Path) -> None:
    spec = spec_text("  household: {comparisons: [email, phone], person: [first, dob]}\n")
    spec = spec_from_text(spec)
    dedupe(ws, table(ws, ROWS[:6]), spec, None)
    # what an older crmtool saved: no household group, no format, no settings hash
    saved = json.loads(ws.con.execute("SELECT model FROM dedupe_model").fetchall()[0][0])
    for key in ("household", "household_cap", "format", "settings"):
        del saved[key]
    ws.con.execute("UPDATE dedupe_model SET model = ?", [json.dumps(saved)])
    warnings: list[str] = []
    new = [*ROWS[:6], ["9", "Will", "Smith", "02/03/1970", "bill@x.com", "", "2025-01-01", ""]]
    result = dedupe(ws, table(ws, new), spec, None, incremental=True, warn=warnings.append)
    assert not result.incremental and result.fresh_records == 7
    assert warnings == ["incremental: the saved model is stale (it was saved in model format 1, this version "
                        "reads format 3): retraining it and deduplicating every record"]
    assert result.model.household and result.model.settings == settings_hash(spec)
    assert clusters(ws)["9"] == clusters(ws)["5"]
    # the retrained model is current: the next incremental run reuses it
    again = dedupe(ws, table(ws, new), spec, None, incremental=True)
    assert again.incremental and again.fresh_records == 0


def test_incremental_retrains_when_the_household_group_changed(ws: Workspace, tmp_path: Path) -> None:
    dedupe(ws, table(ws, ROWS[:6]), spec_from_text(spec_text("  household: {comparisons: []}\n")), None)
    warnings: list[str] = []
    spec = spec_from_text(spec_text("  household: {comparisons: [email, phone]}\n"))
    result = dedupe(ws, table(ws, ROWS[:6]), spec, None, incremental=True, warn=warnings.append)
    assert not result.incremental
    assert warnings == ["incremental: the saved model is stale (the dedupe section changed since it was "
                        "trained): retraining it and deduplicating every record"]
    # settings that act after scoring (threshold) keep the model
    later = spec_from_text(spec_text("  household: {comparisons: [email, phone]}\n").replace(
        "threshold: 0.9", "threshold: 0.92"))
    assert dedupe(ws, table(ws, ROWS[:6]), later, None, incremental=True).incremental


def test_em_model_on_small_data(ws: Workspace, tmp_path: Path) -> None:
    spec = spec_from_text(SPEC.replace("model: {estimate: fixed}", "model: {estimate: em}"))
    result = dedupe(ws, table(ws, ROWS), spec, None)
    assert result.model.estimate == "em"
    got = clusters(ws)
    assert got["1"] == got["2"] and got["4"] == "4"


# --- bad input ----------------------------------------------------------------------------------

def test_repeated_ids_stop(ws: Workspace) -> None:
    with pytest.raises(InputError, match="repeats 1 ids: ids must be unique"):
        dedupe(ws, table(ws, [*ROWS, ROWS[0]]), spec_from_text(spec_text()), None)


def test_single_row_empty_blocking_identical_rows(ws: Workspace) -> None:
    spec = spec_from_text(spec_text())
    one = dedupe(ws, table(ws, ROWS[:1]), spec, None)
    assert one.rows == 1 and one.candidate_pairs == 0 and one.clusters.clusters == 1
    empty = [[str(i), "", "", "", "", "", "", ""] for i in range(5)]
    r = dedupe(ws, table(ws, empty), spec, None)
    assert r.candidate_pairs == 0 and r.clusters.clusters == 5
    same = [[str(i), *ROWS[0][1:]] for i in range(30)]
    r = dedupe(ws, table(ws, same), spec, None)
    assert r.clusters.clusters == 1 and r.clusters.largest == 30


def test_huge_block_is_capped_with_warning(ws: Workspace) -> None:
    spec = spec_from_text(spec_text("  max_block_size: 10\n"))
    same = [[str(i), *ROWS[0][1:]] for i in range(30)]
    warnings: list[str] = []
    r = dedupe(ws, table(ws, same), spec, None, warn=warnings.append)
    assert r.blocking[0].skipped_blocks == 1 and r.candidate_pairs == 0
    assert any("blocks of more than 10 records skipped" in w for w in warnings)


def test_long_names_are_not_truncated(ws: Workspace, tmp_path: Path) -> None:
    long = "Ana" + "x" * 10_000
    rows = [["1", long, "Ruiz", "01/01/1990", "a@x.es", "", "", ""],
            ["2", long, "Ruiz", "01/01/1990", "a@x.es", "", "", ""]]
    dedupe(ws, table(ws, rows), spec_from_text(spec_text()), tmp_path)
    golden = list(read_csv(tmp_path / "golden.csv"))
    assert len(golden) == 1 and golden[0]["first"] == long


# --- CLI ----------------------------------------------------------------------------------------

def _app() -> typer.Typer:
    from crmtool.cli import dedupe_cmd

    app = typer.Typer()

    @app.callback()
    def _root() -> None: ...

    dedupe_cmd.register(app)
    return app


def test_cli_dedupe_and_explain(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n" + spec_text())
    data = tmp_path / "people.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter=";").writerows([COLS, *ROWS])
    wsp = str(tmp_path / "ws.duckdb")
    runner = CliRunner()
    res = runner.invoke(_app(), ["dedupe", str(data), "--rules", str(rules), "--out", str(tmp_path / "out"),
                                 "--workspace", wsp, "--format", "json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["clusters"] == 4 and payload["duplicate_clusters"] == 3
    assert (tmp_path / "out" / "golden.csv").exists()
    res = runner.invoke(_app(), ["explain", "1", "3", "--rules", str(rules), "--workspace", wsp])
    assert res.exit_code == 0 and "swapped" in res.stdout and "same cluster" in res.stdout
    repeated = tmp_path / "rep.csv"
    with repeated.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([COLS, *ROWS, ROWS[0]])
    res = runner.invoke(_app(), ["dedupe", str(repeated), "--rules", str(rules), "--out", str(tmp_path / "o2"),
                                 "--workspace", ":memory:"])
    assert res.exit_code == 2 and "ids must be unique" in res.output


def test_clean_hook_continues_the_audit_chain(ws: Workspace, tmp_path: Path) -> None:
    from crmtool import api
    from crmtool.audit import verify_log
    from crmtool.dedupe.entry import dedupe_ruleset
    from crmtool.rulefile import load_rules

    root = Path(__file__).resolve().parents[2]
    cleaned = api.clean(ws, root / "examples" / "clientes.csv", [root / "rules"], tmp_path)
    # clean itself runs the hook: a second sealed run in the same log, and the dedupe outputs
    log = tmp_path / "crmtool.audit"
    assert verify_log(log, ws.hasher).runs == 2
    assert {"clusters", "golden", "review"} <= set(cleaned.outputs)
    result = dedupe_ruleset(ws, load_rules([root / "rules"]), "clean_clientes", tmp_path, fmt="csv",
                            audit_log=log)
    assert result is not None and result.rows == len(read_csv(tmp_path / "clusters.csv"))
    check = verify_log(log, ws.hasher)
    assert check.ok and check.runs == 3
    no_section = tmp_path / "r.yaml"
    no_section.write_text("version: 1\nrules: []\n")
    assert dedupe_ruleset(ws, load_rules([no_section]), "clean_clientes", None) is None


def test_phonetic_sql_equals_python_on_any_text() -> None:
    import duckdb
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from crmtool.dedupe.names import phonetic_sql
    from crmtool.dedupe.prepare import text_sql

    con = duckdb.connect()

    @settings(max_examples=60, deadline=None)
    @given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=30))
    def check(raw: str) -> None:
        norm = con.execute(f"SELECT {text_sql('?')}", [raw]).fetchall()[0][0]
        if norm is None:
            return
        sql = con.execute(f"SELECT {phonetic_sql('?')}", [norm]).fetchall()[0][0]
        assert sql == phonetic_key(norm)

    check()


def test_phonetic_table_per_word_equals_python() -> None:
    """prepare computes the phonetic key once per distinct word and reassembles it in word order."""
    import duckdb
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from crmtool.dedupe.names import phonetic_table_sql
    from crmtool.dedupe.prepare import text_sql

    con = duckdb.connect()
    word = st.text(alphabet=st.sampled_from("abcghlnoqrsuvxyzñü "), min_size=1, max_size=8)

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.lists(word, min_size=1, max_size=4).map(" ".join), min_size=1, max_size=12))
    def check(raws: list[str]) -> None:
        con.execute("CREATE OR REPLACE TABLE raw (r VARCHAR)")
        con.executemany("INSERT INTO raw VALUES (?)", [[r] for r in raws])
        con.execute(f"CREATE OR REPLACE TABLE vals AS SELECT DISTINCT {text_sql('r')} AS v FROM raw "
                    f"WHERE {text_sql('r')} IS NOT NULL")
        got = dict(con.execute(phonetic_table_sql("vals")).fetchall())
        want = {v: phonetic_key(v) for (v,) in con.execute("SELECT v FROM vals").fetchall()}
        assert got == want

    check()


def test_review_file_filled_in_is_a_decisions_file_and_reruns_are_identical(tmp_path: Path) -> None:
    spec = spec_from_text(spec_text())
    outputs = []
    for run in ("a", "b"):
        with Workspace(":memory:") as w:
            dedupe(w, table(w, ROWS), spec, tmp_path / run)
        outputs.append({n: (tmp_path / run / f"{n}.csv").read_bytes() for n in ("clusters", "golden", "review")})
    assert outputs[0] == outputs[1]  # byte-identical reruns
    review = read_csv(tmp_path / "a" / "review.csv")
    pair = next(r for r in review if {r["id_l"], r["id_r"]} == {"1", "4"})
    pair["decision"] = "match"
    filled = tmp_path / "filled.csv"
    with filled.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(review[0]))
        writer.writeheader()
        writer.writerows(review)
    with Workspace(":memory:") as w:
        result = dedupe(w, table(w, ROWS), spec, tmp_path / "c", decisions=filled)
        got = clusters(w)
    assert got["4"] == got["1"] and result.decisions["match"] == 1
    assert not any({r["id_l"], r["id_r"]} == {"1", "4"} for r in read_csv(tmp_path / "c" / "review.csv"))


def test_a_failed_write_leaves_the_previous_files_together(ws: Workspace, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """clusters, golden and review are written into a stage and moved together: a failure while the
    second is written leaves the three files of the previous run, and no stage folder."""
    import crmtool.io.writers as writers

    out = tmp_path / "out"
    dedupe(ws, table(ws, ROWS), spec_from_text(spec_text()), out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.suffix == ".csv"}
    assert set(before) == {"clusters.csv", "golden.csv", "review.csv"}
    for p in out.glob("*.csv"):  # marks: a rerun writes the same bytes, so make them tell
        p.write_bytes(p.read_bytes() + b"# previous\n")
    marked = {p.name: p.read_bytes() for p in out.glob("*.csv")}
    real, calls = writers.write_query, []

    def full_disk_on_second(*args: object, **kwargs: object) -> object:
        calls.append(args[2])
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(writers, "write_query", full_disk_on_second)
    with pytest.raises(OSError):
        dedupe(ws, table(ws, ROWS), spec_from_text(spec_text()), out)
    assert {p.name: p.read_bytes() for p in out.glob("*.csv")} == marked
    assert not list(out.glob(".crmtool-*"))
