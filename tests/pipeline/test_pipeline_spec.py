"""Parsing the pipeline file: schema errors with lines, paths kept inside the root."""

from __future__ import annotations

import os
import textwrap
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmtool.errors import ConfigError
from crmtool.pipeline import load_pipeline


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipeline.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_every_problem_at_once_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
        version: 1
        keep: 0
        steps:
          - step: clean
            input: x.csv
          - step: teleport
            input: y.csv
        """)
    with pytest.raises(ConfigError) as err:
        load_pipeline(path)
    text = str(err.value)
    assert f"{path}:2: keep: 0 is less than the minimum of 1" in text
    assert f"{path}:4: steps/0: 'rules' is required" in text
    assert f"{path}:6: steps/1/step: expected one of" in text
    assert len(err.value.problems) == 3


def test_paths_cannot_leave_the_pipeline_folder(tmp_path: Path) -> None:
    path = _write(tmp_path / "p", """\
        version: 1
        inputs:
          customers: ../secret/clientes-{date}.csv
        steps:
          - step: clean
            input: customers
            rules: /etc/rules
          - step: emails
            input: ghost:clean
        """)
    with pytest.raises(ConfigError) as err:
        load_pipeline(path)
    problems = {loc.line: msg for loc, msg in err.value.problems}
    assert "leads outside" in problems[3]
    assert "absolute path" in problems[7]
    assert "names no earlier step 'ghost'" in problems[9]
    # the operator can widen the root and allow absolute paths; the file cannot
    (tmp_path / "rules.yaml").write_text("version: 1\nrules: []\n", encoding="utf-8")
    ok = _write(tmp_path / "p", """\
        version: 1
        inputs:
          customers: ../secret/clientes-{date}.csv
        steps:
          - step: clean
            input: customers
            rules: /etc/rules
        """)
    spec = load_pipeline(ok, root=tmp_path, allow_absolute=True)
    assert spec.input_path("customers", date(2026, 11, 2), "clean.input") == \
        (tmp_path / "secret" / "clientes-2026-11-02.csv").resolve()


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_a_symlink_leading_out_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "p").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "p" / "data")
    path = _write(tmp_path / "p", """\
        version: 1
        steps:
          - step: emails
            input: data/x.csv
        """)
    with pytest.raises(ConfigError, match="leads outside"):
        load_pipeline(path)


def test_duplicate_step_names_and_placeholders(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
        version: 1
        steps:
          - step: emails
            input: a-{date}.csv
          - step: emails
            input: b-{month}.csv
        """)
    with pytest.raises(ConfigError) as err:
        load_pipeline(path)
    text = str(err.value)
    assert "step name 'emails' is used twice" in text
    assert "the only placeholder a path may hold is {date}" in text


SEGMENTS = ["..", ".", "a", "b", "{date}", "x-{date}.csv"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=6))
def test_any_relative_path_either_stays_inside_or_is_refused(tmp_path: Path, parts: list[str]) -> None:
    root = tmp_path / "root"
    value = "/".join(parts)
    path = _write(root / "p", f"version: 1\nsteps:\n  - step: emails\n    input: '{value}'\n")
    try:
        spec = load_pipeline(path, root=root)
    except ConfigError as exc:
        assert "leads outside" in str(exc)
        return
    resolved = spec.input_path(value, date(2026, 11, 1), "emails.input")
    assert resolved.is_relative_to(root.resolve())
