"""Issue 18, item 4: one result model. Every command that reports a result answers ``--format json``
in one frame (schema_version, command, status, then its own fields) that the published results
schema accepts, and its exit code is its status's, whatever the format."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from typer.testing import Result

from crmtool.report import results_schema
from crmtool.status import Status

from .conftest import ROOT, cli

EX = "examples"
SEG_INPUTS = (f"{EX}/clientes.csv", "--orders", f"{EX}/pedidos.csv", "--events", f"{EX}/eventos.csv")
# (case, command as it names itself, arguments): in this order, in one working folder and workspace
CASES: list[tuple[str, str, tuple[str, ...]]] = [
    ("init", "init", ("init", f"{EX}/clientes.csv", "--dir", "starter")),
    ("rules lint", "rules lint", ("rules", "lint", "rules")),
    ("segment check", "segment check", ("segment", "check", "--segments", "segments.yaml")),
    ("profile", "profile", ("profile", f"{EX}/clientes.csv")),
    ("validate", "validate", ("validate", f"{EX}/clientes.csv", "--rules", "rules")),
    ("clean", "clean", ("clean", f"{EX}/clientes.csv", "--rules", "rules", "--out", "out")),
    ("audit verify", "audit verify", ("audit", "verify")),
    ("emails", "emails", ("emails", f"{EX}/clientes.csv", "--out", "mails")),
    ("dedupe", "dedupe", ("dedupe", "out/clientes.clean.csv", "--rules", "rules", "--out", "dd")),
    ("dedupe --suggest", "dedupe", ("dedupe", f"{EX}/clientes.csv", "--suggest")),
    ("suppress import", "suppress import", ("suppress", "import", f"{EX}/bajas.csv", "--kind", "unsubscribe")),
    ("suppress list", "suppress list", ("suppress", "list")),
    ("erase", "erase", ("erase", "--requests", f"{EX}/erasure-requests.csv")),
    ("erase --check", "erase", ("erase", "--check", f"{EX}/erasure-requests.csv")),
    ("subject export", "subject export", ("subject", "export", "C0000001", "--out", "subject")),
    ("pii", "pii", ("pii", f"{EX}/clientes.csv")),
    ("segment", "segment run", ("segment", *SEG_INPUTS, "--out", "seg")),
    ("segment preview", "segment preview", ("segment", "preview", *SEG_INPUTS)),
    ("segment diff", "segment diff", ("segment", "diff")),
    ("kpis", "kpis", ("kpis", "--kpis", f"{EX}/kpis.yaml")),
    ("diff", "diff", ("diff", f"{EX}/clientes.csv", f"{EX}/clientes-next.csv", "--key", "customer_id")),
    ("report", "report", ("report", "--out", "report.html")),
    ("campaign plan", "campaign plan", ("campaign", "plan", "--baseline", "3%", "--effect", "0.5pp")),
]
ENV = {"CRMTOOL_KEY": "test-key-0123456789abcdef", "CRMTOOL_KEY_FILE": "", "CRMTOOL_WORKSPACE": ""}


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Result, Result | None]]]:
    """Each case run with --format json (and, for a few, once more as text), in order, in one folder."""
    folder = tmp_path_factory.mktemp("result-model")
    for part in ("examples", "rules"):
        shutil.copytree(ROOT / part, folder / part)
    shutil.copy(ROOT / "segments.yaml", folder / "segments.yaml")
    here = Path.cwd()
    os.chdir(folder)
    try:
        got: dict[str, tuple[Result, Result | None]] = {}
        for case, _, args in CASES:
            as_json = cli(*args, "--format", "json", env=ENV)
            again = cli(*args, env=ENV) if case in ("kpis", "segment check", "rules lint") else None
            got[case] = (as_json, again)
            if case == "segment":  # a second run, so that 'segment diff' has two to compare
                cli(*args, "--format", "json", env=ENV)
        yield got
    finally:
        os.chdir(here)


@pytest.mark.parametrize(("case", "command"), [(c, n) for c, n, _ in CASES])
def test_every_command_answers_in_the_one_json_frame(answers: dict[str, tuple[Result, Result | None]],
                                                     case: str, command: str) -> None:
    result, _ = answers[case]
    assert result.stdout.strip(), f"{case}: nothing on stdout ({result.output[-400:]})"
    payload = json.loads(result.stdout)
    errors = [e.message for e in Draft202012Validator(results_schema()).iter_errors(payload)]
    assert errors == [], f"{case}: {errors}"
    assert payload["schema_version"] == 1 and payload["command"] == command
    assert result.exit_code == Status(payload["status"]).exit_code, (case, payload["status"], result.output[-400:])


def test_the_exit_code_is_the_status_whatever_the_format(answers: dict[str, tuple[Result, Result | None]]) -> None:
    """kpis on the example fails a target: exit 1 as text and as JSON; the checks pass in text too."""
    kpis_json, kpis_text = answers["kpis"]
    assert kpis_text is not None and json.loads(kpis_json.stdout)["status"] == "fail"
    assert kpis_json.exit_code == kpis_text.exit_code == 1
    for case in ("segment check", "rules lint"):
        as_json, as_text = answers[case]
        assert as_text is not None and as_json.exit_code == as_text.exit_code == 0
        assert "ok" in as_text.output and not as_text.stdout.lstrip().startswith("{")
