"""Running pipelines: versioned folders, latest only on success, retention, log line, exit codes."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

from typer.testing import CliRunner

from crmtool.cli import app
from crmtool.pipeline.registry import STEP_KINDS, StepContext, StepKind, StepOutcome, register
from crmtool.status import Status
from crmtool.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

RULES = """\
version: 1
dataset:
  key: id
rules:
  - kind: required
    column: email
    severity: {severity}
    action: flag
"""


def cli(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def _project(tmp_path: Path, severity: str = "warning", keep: int = 14) -> Path:
    (tmp_path / "exports").mkdir(parents=True)
    (tmp_path / "rules.yaml").write_text(RULES.format(severity=severity), encoding="utf-8")
    for day, rows in (("2026-11-01", "1,a@x.es\n2,b@x.es\n"), ("2026-11-02", "1,a@x.es\n2,\n3,c@x.es\n"),
                      ("2026-11-03", "1,a@x.es\n")):
        (tmp_path / "exports" / f"clientes-{day}.csv").write_text("id,email\n" + rows, encoding="utf-8")
    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(f"""\
        version: 1
        workspace: crm.duckdb
        out: out
        keep: {keep}
        inputs:
          customers: exports/clientes-{{date}}.csv
        steps:
          - step: clean
            input: customers
            rules: rules.yaml
          - step: emails
            input: clean:clean
        """), encoding="utf-8")
    return path


def _latest(tmp_path: Path) -> str:
    return (tmp_path / "out" / "latest.txt").read_text(encoding="utf-8").strip()


def test_dated_runs_publish_latest_and_log_one_line(tmp_path: Path) -> None:
    pipeline = _project(tmp_path)
    log = tmp_path / "run.log"
    code, out, err = cli("run", pipeline, "--date", "2026-11-01", "--quiet", "--log-file", log)
    assert code == 0, err
    assert out == "" and err == ""  # --quiet: nothing on success
    run_id = _latest(tmp_path).split("/")[1]
    folder = tmp_path / "out" / "runs" / run_id
    assert (folder / "exports").exists() is False
    assert (folder / "clientes-2026-11-01.clean.csv").is_file() and (folder / "emails.csv").is_file()
    assert (tmp_path / "out" / "latest").resolve() == folder.resolve()
    last = log.read_text(encoding="utf-8").splitlines()[-1]
    assert f"crmtool run: run {run_id} pass exit=0 steps=2/2 rows_in=2 rows_out=2 rejected=0" in last
    manifest = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    assert [s["status"] for s in manifest["steps"]] == ["pass", "pass"]
    with Workspace(tmp_path / "crm.duckdb") as ws:
        runs = ws.con.execute("SELECT command, parent_run_id FROM crm_runs ORDER BY started_at").fetchall()
        outputs = ws.con.execute("SELECT count(*) FROM crm_outputs WHERE run_id = ?", [run_id]).fetchall()[0][0]
    assert runs == [("run", None), ("clean", run_id), ("emails", run_id)]
    assert outputs == 1  # the pipeline's run.json; each step registered its own files


def test_a_failed_step_leaves_latest_alone_and_says_so(tmp_path: Path) -> None:
    pipeline = _project(tmp_path, severity="error")
    assert cli("run", pipeline, "--date", "2026-11-01", "-q")[0] == 0
    good = _latest(tmp_path)
    log = tmp_path / "run.log"
    code, out, err = cli("run", pipeline, "--date", "2026-11-02", "-q", "--log-file", log)
    assert code == 1  # an error rule failed (an empty email)
    assert _latest(tmp_path) == good
    assert (tmp_path / "out" / "latest").resolve().name == good.split("/")[1]
    last = log.read_text(encoding="utf-8").splitlines()[-1]
    assert " fail exit=1 steps=0/2 rows_in=3" in last
    assert "fail exit=1" in err and out == ""
    # a missing input: exit 2, latest still untouched, the log says error
    code, _out, err = cli("run", pipeline, "--date", "2026-11-09", "-q", "--log-file", log)
    assert code == 2
    assert "clientes-2026-11-09.csv: no such file" in err
    assert _latest(tmp_path) == good
    assert " error exit=2 steps=0/2" in log.read_text(encoding="utf-8").splitlines()[-1]


def test_keep_removes_old_run_folders_but_never_latest(tmp_path: Path) -> None:
    pipeline = _project(tmp_path, severity="error", keep=2)
    assert cli("run", pipeline, "--date", "2026-11-01", "-q")[0] == 0
    published = _latest(tmp_path).split("/")[1]
    for day in ("2026-11-02", "2026-11-02", "2026-11-02"):  # three failing nights
        assert cli("run", pipeline, "--date", day, "-q")[0] == 1
    runs = sorted(p.name for p in (tmp_path / "out" / "runs").iterdir())
    # the two newest plus the published one survive; the one in between was removed
    assert len(runs) == 3 and published in runs
    assert cli("run", pipeline, "--date", "2026-11-03", "-q")[0] == 0
    runs = sorted(p.name for p in (tmp_path / "out" / "runs").iterdir())
    assert len(runs) == 2 and published not in runs and _latest(tmp_path).split("/")[1] in runs


def test_dry_run_shows_the_plan_and_missing_inputs(tmp_path: Path) -> None:
    pipeline = _project(tmp_path)
    code, out, _err = cli("run", pipeline, "--date", "2026-11-01", "--dry-run")
    assert code == 0
    assert "1. clean (clean)" in out and "clientes-2026-11-01.csv" in out and "output 'clean' of step clean" in out
    assert not (tmp_path / "out").exists() and not (tmp_path / "crm.duckdb").exists()
    code, out, err = cli("run", pipeline, "--date", "2030-01-01", "--dry-run")
    assert code == 2 and "missing: clean.input" in out and "1 input(s) missing" in err


def test_registry_is_open(tmp_path: Path) -> None:
    def _hello(ctx: StepContext, p: dict[str, object]) -> StepOutcome:
        target = ctx.folder / "hello.txt"
        target.write_text(f"hello {p['who']} on {ctx.day}\n", encoding="utf-8")
        return StepOutcome(Status.PASS, None, {"hello": target}, {"greeted": 1})

    register(StepKind("hello", {"who": "text"}, ("who",), _hello))
    try:
        path = tmp_path / "p.yaml"
        path.write_text("version: 1\nsteps:\n  - step: hello\n    who: world\n", encoding="utf-8")
        code, _out, err = cli("run", path, "--date", "2026-11-05", "-q")
        assert code == 0, err
        assert (tmp_path / "out" / "latest" / "hello.txt").read_text(encoding="utf-8") == "hello world on 2026-11-05\n"
    finally:
        STEP_KINDS.pop("hello")


def test_the_example_pipeline_runs(tmp_path: Path) -> None:
    for name in ("examples", "rules"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "segments.yaml", tmp_path / "segments.yaml")
    code, out, err = cli("run", tmp_path / "examples" / "pipeline.yaml", "--root", tmp_path,
                         "--date", "2026-11-01")
    assert code == 0, out + err
    latest = tmp_path / "out" / "pipeline" / "latest"
    for name in ("clientes.clean.csv", "emails.csv", "golden.csv", "holdouts.csv", "clientes-ventas.csv",
                 "kpis.json", "run.json"):
        assert (latest / name).is_file(), name
    kpis = json.loads((latest / "kpis.json").read_text(encoding="utf-8"))
    assert {k["name"] for k in kpis["kpis"]} >= {"reject_rate", "invalid_emails"}
    assert all(k["latest"] is not None for k in kpis["kpis"])
