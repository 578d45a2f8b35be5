"""User SQL is data: forbidden SQL is refused in every place a file accepts SQL, through the real
loaders and the CLI, with file:line; and the walled DuckDB session refuses files on its own."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from crmtool.api import load_checked_rules
from crmtool.cli import app
from crmtool.errors import ConfigError
from crmtool.segments.spec import load_segments
from crmtool.usersql import check_expression, expression_problems
from crmtool.workspace import Workspace

KEY_TEXT = "KEYBYTES-3f9a1c-do-not-leak"

# (id, expression, a word the refusal must name); {key} and {out} are filled in per test
FORBIDDEN = [
    ("subquery_read_text", "(SELECT content FROM read_text('{key}')) IS NOT NULL", "query"),
    ("read_text", "read_text('{key}') IS NOT NULL", "read_text"),
    ("read_csv", "read_csv('{key}') IS NOT NULL", "read_csv"),
    ("read_blob", "read_blob('{key}') IS NOT NULL", "read_blob"),
    ("read_parquet", "read_parquet('{key}') IS NOT NULL", "read_parquet"),
    ("glob", "glob('*') IS NOT NULL", "glob"),
    ("in_subquery_other_table", "customer_id IN (SELECT run_id FROM crm_runs)", "subquery"),
    ("exists_subquery", "EXISTS (SELECT 1 FROM crm_outputs)", "exists"),
    ("semicolon_copy", "true; COPY (SELECT 1) TO '{out}'", "';'"),
    ("semicolon_attach", "true; ATTACH '{out}' AS x", "';'"),
    ("attach", "ATTACH '{out}' AS x", "ATTACH"),
    ("copy", "COPY crm_runs TO '{out}'", "COPY"),
    ("pragma", "PRAGMA version", "PRAGMA"),
    ("set", "SET enable_external_access = true", "SET"),
    ("install", "INSTALL httpfs", "INSTALL"),
    ("load", "LOAD httpfs", "LOAD"),
    ("call", "CALL pragma_version()", "CALL"),
    ("getenv", "getenv('HOME') <> ''", "getenv"),
    ("current_setting", "current_setting('allowed_directories') IS NULL", "current_setting"),
    ("query_function", "query('SELECT 1') IS NULL", "query"),
    ("parameter", "customer_id = ?", "parameter"),
    # the same expressions run on Spark (validate --engine spark): its Java reflection stays out
    ("spark_reflect", "reflect('java.lang.System', 'getProperty', 'user.home') IS NOT NULL", "reflect"),
    ("spark_java_method", "java_method('java.lang.System', 'getenv', 'HOME') IS NOT NULL", "java_method"),
]
IDS = [f[0] for f in FORBIDDEN]


def _fill(sql: str, tmp_path: Path) -> str:
    return sql.format(key=tmp_path / "crmtool.key", out=tmp_path / "stolen.csv")


def _yaml_str(sql: str) -> str:
    return "'" + sql.replace("'", "''") + "'"


# every place a rule or segments file accepts SQL: (place, file name, text with {sql}, line of {sql})
RULE_PLACES = {
    "sql_rule": ("rules.yaml", "rules:\n  - name: r\n    kind: sql\n    expr: {sql}\n", 4),
    "where": ("rules.yaml", "rules:\n  - name: r\n    kind: required\n    column: email\n    where: {sql}\n", 5),
    "dedupe_blocking": ("rules.yaml", "dedupe:\n  id: customer_id\n  blocking:\n    - name: b\n      sql: {sql}\n"
                        "  comparisons:\n    - {{column: email, method: email}}\n", 5),
    "dedupe_survivorship": ("rules.yaml", "dedupe:\n  id: customer_id\n  blocking:\n    - {{name: e, on: [email]}}\n"
                            "  comparisons:\n    - {{column: email, method: email}}\n  survivorship:\n"
                            "    fields:\n      email:\n        rule: sql\n        sql: {sql}\n", 10),
}
SEGMENT_PLACES = {
    "segment_sql": ("segments.yaml", "segments:\n  - name: s\n    when:\n      sql: {sql}\n", 4),
    "segment_string": ("segments.yaml", "segments:\n  - name: s\n    when: {sql}\n", 3),
    "segment_nested": ("segments.yaml", "segments:\n  - name: s\n    when:\n      all:\n"
                       "        - {{field: frequency, gt: 1}}\n        - {sql}\n", 6),
    "feature_sql": ("segments.yaml", "features:\n  f:\n    sql: {sql}\nsegments:\n  - {{name: s, when: 'TRUE'}}\n", 3),
    "feature_string": ("segments.yaml", "features:\n  f: {sql}\nsegments:\n  - {{name: s, when: 'TRUE'}}\n", 2),
    "funnel": ("segments.yaml", "funnel:\n  stages:\n    - stage: x\n      when: {sql}\nsegments:\n"
               "  - {{name: s, when: 'TRUE'}}\n", 4),
}


def _write(tmp_path: Path, place: tuple[str, str, int], sql: str) -> tuple[Path, int]:
    name, text, line = place
    path = tmp_path / name
    path.write_text(text.format(sql=_yaml_str(_fill(sql, tmp_path))), encoding="utf-8")
    return path, line


# -- the parser on its own ------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "sql", "names"), FORBIDDEN, ids=IDS)
def test_forbidden_expression_is_refused_naming_the_part(case: str, sql: str, names: str, tmp_path: Path) -> None:
    vetted, problems = expression_problems(_fill(sql, tmp_path), columns=None, aggregates=True)
    assert vetted is None
    assert any(names.lower() in p.lower() for p in problems), problems


@pytest.mark.parametrize("sql", [
    "try_strptime(last_order_date, '%Y-%m-%d') >= try_strptime(signup_date, '%Y-%m-%d')",
    "country ILIKE 'es%' OR country IS NULL",
    "CASE WHEN length(a) > 0 THEN round(length(b) / length(a), 3) END",
    "list_transform(string_split(a, ' '), x -> upper(x)) <> []",
    "CAST(a AS INTEGER) BETWEEN 1 AND 5 AND a NOT IN ('x', 'y')",
    "date_diff('day', CAST(b AS DATE), current_date) > 30",
])
def test_ordinary_expressions_pass_and_come_back_as_sql_duckdb_runs(sql: str) -> None:
    vetted = check_expression(sql, columns=["a", "b", "country", "last_order_date", "signup_date"], location="f:1")
    con = duckdb.connect()
    con.execute("CREATE TABLE t (a VARCHAR, b VARCHAR, country VARCHAR, last_order_date VARCHAR, signup_date VARCHAR)")
    con.execute(f"SELECT ({vetted}) FROM t")  # binds


def test_columns_are_checked_when_known_and_aggregates_only_where_allowed() -> None:
    assert expression_problems("nosuch > 1", columns=["a"])[1] == ["unknown column 'nosuch'"]
    assert expression_problems("t.a || s.b", columns=["a", "b"], aliases=["t"])[1] == ["unknown column 's.b'"]
    assert "aggregate function max() is not allowed here" in expression_problems("max(a)", columns=["a"])[1]
    assert expression_problems("max(a)", columns=["a"], aggregates=True)[0] == "MAX(a)"


def test_comments_cannot_smuggle_text_past_the_check() -> None:
    vetted = check_expression("a /* ; ATTACH 'x' AS y */ = 1 -- ; COPY", columns=["a"], location="f:1")
    assert vetted == "a = 1"


def test_check_expression_raises_a_config_error_with_the_location() -> None:
    with pytest.raises(ConfigError) as info:
        check_expression("getenv('HOME')", columns=None, location="rules.yaml:7")
    assert str(info.value) == "rules.yaml:7: function getenv() is not allowed"
    assert info.value.exit_code == 2


# -- the real loaders ------------------------------------------------------------------------------


@pytest.mark.parametrize("place", sorted(RULE_PLACES))
@pytest.mark.parametrize(("case", "sql", "names"), FORBIDDEN, ids=IDS)
def test_rule_file_loader_refuses_forbidden_sql(place: str, case: str, sql: str, names: str, tmp_path: Path) -> None:
    path, line = _write(tmp_path, RULE_PLACES[place], sql)
    with pytest.raises(ConfigError) as info:
        load_checked_rules([path])
    problems = [f"{loc}: {msg}" for loc, msg in info.value.problems]
    assert problems and all(p.startswith(f"{path}:{line}: ") for p in problems), problems
    assert any(names.lower() in p.lower() for p in problems), problems


@pytest.mark.parametrize(("case", "sql", "names"), FORBIDDEN, ids=IDS)
def test_kpis_loader_refuses_forbidden_sql(case: str, sql: str, names: str, tmp_path: Path) -> None:
    from crmtool.kpis.spec import load_kpis

    path, line = _write(tmp_path, ("kpis.yaml", "version: 1\nkpis:\n  - name: k\n    sql: {sql}\n", 4), sql)
    with pytest.raises(ConfigError) as info:
        load_kpis(path)
    problems = [f"{loc}: {msg}" for loc, msg in info.value.problems]
    assert problems and all(p.startswith(f"{path}:{line}: ") for p in problems), problems
    assert any(names.lower() in p.lower() for p in problems), problems


def test_a_kpi_sql_aggregate_over_the_metric_columns_is_accepted(tmp_path: Path) -> None:
    from crmtool.kpis.spec import load_kpis

    path = tmp_path / "kpis.yaml"
    path.write_text("version: 1\nkpis:\n  - name: k\n    sql: \"sum(value) FILTER (WHERE name = 'rows_in')\"\n",
                    encoding="utf-8")
    assert load_kpis(path).kpis[0].sql == "SUM(value) FILTER(WHERE name = 'rows_in')"


@pytest.mark.parametrize("place", sorted(SEGMENT_PLACES))
@pytest.mark.parametrize(("case", "sql", "names"), FORBIDDEN, ids=IDS)
def test_segments_loader_refuses_forbidden_sql(place: str, case: str, sql: str, names: str, tmp_path: Path) -> None:
    path, line = _write(tmp_path, SEGMENT_PLACES[place], sql)
    with pytest.raises(ConfigError) as info:
        load_segments(path)
    problems = [f"{loc}: {msg}" for loc, msg in info.value.problems]
    assert problems and all(p.startswith(f"{path}:{line}: ") for p in problems), problems
    assert any(names.lower() in p.lower() for p in problems), problems


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: a, kind: sql, expr: \"getenv('X') = ''\"}\n"
                    "  - {name: b, kind: required, column: x, where: \"x IN (SELECT 1)\"}\n"
                    "dedupe:\n  id: id\n  blocking:\n    - {name: k, sql: \"read_text('k')\"}\n"
                    "  comparisons: [{column: x, method: exact}]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_checked_rules([path])
    lines = sorted(loc.line for loc, _ in info.value.problems)
    assert lines == [2, 3, 7]


# -- the CLI ---------------------------------------------------------------------------------------

CLI_CASES = ["subquery_read_text", "semicolon_copy", "attach", "read_text", "getenv", "in_subquery_other_table"]


def _no_key_anywhere(folder: Path) -> None:
    for file in folder.rglob("*"):
        if file.is_file() and file.name != "crmtool.key":
            assert KEY_TEXT.encode() not in file.read_bytes(), file


@pytest.mark.parametrize("place", sorted(RULE_PLACES))
@pytest.mark.parametrize("case", CLI_CASES)
def test_rules_lint_and_clean_refuse_with_exit_2_and_leak_nothing(place: str, case: str, tmp_path: Path) -> None:
    sql = dict((f[0], f[1]) for f in FORBIDDEN)[case]
    (tmp_path / "crmtool.key").write_text(KEY_TEXT, encoding="utf-8")
    rules, line = _write(tmp_path, RULE_PLACES[place], sql)
    runner = CliRunner()
    lint = runner.invoke(app, ["rules", "lint", str(rules)])
    assert lint.exit_code == 2, lint.output
    assert f"{rules}:{line}:" in lint.stderr and "Traceback" not in lint.output
    data = tmp_path / "d.csv"
    data.write_text("customer_id,email\n1,a@b.es\n2,c@d.es\n", encoding="utf-8")
    out = tmp_path / "out"
    clean = runner.invoke(app, ["clean", str(data), "--rules", str(rules), "--out", str(out),
                                "--workspace", str(tmp_path / "crmtool.duckdb"), "-q"])
    assert clean.exit_code == 2, clean.output
    assert f"{rules}:{line}:" in clean.stderr
    assert not out.exists() or not any(out.iterdir())
    assert not (tmp_path / "stolen.csv").exists()
    _no_key_anywhere(tmp_path)


@pytest.mark.parametrize("place", sorted(SEGMENT_PLACES))
@pytest.mark.parametrize("case", CLI_CASES)
def test_segment_check_refuses_with_exit_2(place: str, case: str, tmp_path: Path) -> None:
    sql = dict((f[0], f[1]) for f in FORBIDDEN)[case]
    path, line = _write(tmp_path, SEGMENT_PLACES[place], sql)
    result = CliRunner().invoke(app, ["segment", "check", "--segments", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:{line}:" in result.stderr and "Traceback" not in result.output


def test_sql_naming_a_column_the_data_lacks_stops_clean_before_any_output(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: r, kind: sql, expr: \"current_user <> ''\"}\n", encoding="utf-8")
    data = tmp_path / "d.csv"
    data.write_text("customer_id,email\n1,a@b.es\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["clean", str(data), "--rules", str(rules), "--out", str(tmp_path / "o"),
                                      "--workspace", ":memory:", "-q"])
    assert result.exit_code == 2
    assert re.search(r"rules\.yaml:2: rule 'r': expr: (unknown column|function current_user)", result.stderr)


# -- the second wall: the session itself -----------------------------------------------------------


@pytest.fixture
def walled(tmp_path: Path) -> tuple[Workspace, Path]:
    key = tmp_path / "crmtool.key"
    key.write_text(KEY_TEXT, encoding="utf-8")
    ws = Workspace(tmp_path / "crmtool.duckdb").open()
    yield ws, key
    ws.close()


@pytest.mark.parametrize("statement", [
    "SELECT * FROM read_text('{key}')",
    "SELECT content FROM read_blob('{key}')",
    "SELECT * FROM read_csv('{key}')",
    "SELECT * FROM glob('{folder}/*')",
    "COPY (SELECT 1) TO '{folder}/stolen.csv'",
    "ATTACH '{folder}/other.duckdb' AS other",
    "SELECT * FROM read_text('{sandbox}/../crmtool.key')",
    "INSTALL httpfs",
    "LOAD httpfs",
])
def test_the_locked_session_refuses_files_it_was_not_given(walled: tuple[Workspace, Path], statement: str) -> None:
    ws, key = walled
    from crmtool.io.gate import sandbox_of

    sandbox = sandbox_of(ws.con)
    assert sandbox is not None and sandbox.parent == key.parent
    sql = statement.format(key=key, folder=key.parent, sandbox=sandbox)
    with pytest.raises(duckdb.Error, match=r"(?i)disabled|permission"):
        ws.con.execute(sql).fetchall()
    assert not (key.parent / "stolen.csv").exists()


@pytest.mark.parametrize("setting", ["enable_external_access = true", "allowed_directories = ['/']",
                                     "allowed_paths = ['{key}']", "temp_directory = '{folder}'", "threads = 1"])
def test_the_session_configuration_is_locked(walled: tuple[Workspace, Path], setting: str) -> None:
    ws, key = walled
    with pytest.raises(duckdb.Error, match=r"(?i)locked|disabled|cannot"):
        ws.con.execute("SET " + setting.format(key=key, folder=key.parent))


def test_the_sandbox_is_removed_when_the_workspace_closes(tmp_path: Path) -> None:
    from crmtool.io.gate import sandbox_of

    with Workspace(tmp_path / "w.duckdb") as ws:
        sandbox = sandbox_of(ws.con)
        assert sandbox is not None and sandbox.is_dir()
    assert not sandbox.exists()
    # a sandbox left by a killed run is cleared by the next run on the workspace
    stale = tmp_path / ".w.duckdb.io-stale"
    stale.mkdir()
    with Workspace(tmp_path / "w.duckdb"):
        assert not stale.exists()


def test_clean_with_out_in_the_key_folder_works_and_leaks_nothing(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # --out . beside the key: the session can write the outputs but still cannot read the key
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRMTOOL_KEY")
    (tmp_path / "crmtool.key").write_text(KEY_TEXT, encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: r, kind: sql, expr: \"email LIKE '%@%'\"}\n", encoding="utf-8")
    (tmp_path / "d.csv").write_text("customer_id,email\n1,a@b.es\n2,bad\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["clean", "d.csv", "--rules", "rules.yaml", "--out", ".", "-q"])
    assert result.exit_code == 1, result.output  # the sql rule fails on row 2: checks failed
    assert (tmp_path / "d.clean.csv").read_text(encoding="utf-8").splitlines()[0] == "customer_id,email"
    _no_key_anywhere(tmp_path)
    assert not list(tmp_path.glob(".crmtool.duckdb.io-*"))


@pytest.mark.parametrize("how", ["absolute", "relative", "chain"])
def test_an_input_given_as_a_symbolic_link_is_read_through_the_wall(tmp_path: Path, how: str) -> None:
    # the sandbox holds a hard link to the file the link names, not to the link (DuckDB resolves
    # links and would refuse the target outside the sandbox)
    data = tmp_path / "real" / "d.csv"
    data.parent.mkdir()
    data.write_text("customer_id,email\n1,a@b.es\n2,bad\n", encoding="utf-8")
    link = tmp_path / "link.csv"
    if how == "absolute":
        link.symlink_to(data)
    elif how == "relative":
        link.symlink_to(Path("real") / "d.csv")
    else:
        (tmp_path / "first.csv").symlink_to(data)
        link.symlink_to("first.csv")
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: r, kind: sql, expr: \"email LIKE '%@%'\", action: reject, "
                     "severity: warning}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["clean", str(link), "--rules", str(rules), "--out", str(tmp_path / "out"),
                                      "--workspace", str(tmp_path / "w.duckdb"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "link.clean.csv").read_text(encoding="utf-8").splitlines() == ["customer_id,email",
                                                                                           "1,a@b.es"]
    assert data.read_text(encoding="utf-8").count("\n") == 3 and link.is_symlink()  # input untouched
