"""segments.yaml -> spec, and every configuration error with its file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crmtool.errors import ConfigError
from crmtool.segments.schema import segments_schema
from crmtool.segments.spec import load_segments, parse_segments_text

ROOT = Path(__file__).resolve().parents[2]


def errors(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        parse_segments_text(text, "seg.yaml")
    return str(err.value)


def test_repository_segments_file_loads() -> None:
    spec = load_segments(ROOT / "segments.yaml")
    assert 8 <= len(spec.segments) <= 12
    assert spec.global_holdout is not None and spec.global_holdout.percent == 5
    assert [c.name for c in spec.campaigns] == ["black_friday"]
    names = [f.name for f in spec.features]
    assert names.index("open_rate_90d") > names.index("opens_90d") or "opens_90d" not in names


def test_schema_is_valid_json_schema() -> None:
    from jsonschema import Draft202012Validator

    schema = segments_schema()
    Draft202012Validator.check_schema(schema)
    assert json.loads(json.dumps(schema))["$id"].endswith("segments.schema.json")


def test_duplicate_segment_names() -> None:
    msg = errors("segments:\n  - {name: a, when: 'TRUE'}\n  - name: a\n    when: 'FALSE'\n")
    assert msg == "seg.yaml:3: segment name 'a' already used at seg.yaml:2"


def test_holdout_over_100_percent_global_segment_and_campaign() -> None:
    msg = errors("holdouts:\n  global: 120\n  campaigns:\n    bf: {percent: 101, segments: [a]}\n"
                 "segments:\n  - name: a\n    when: 'TRUE'\n    holdout: 150\n")
    assert "seg.yaml:2: holdout 120% is over 100%" in msg
    assert "seg.yaml:4: holdout 101% is over 100%" in msg
    assert "seg.yaml:8: holdout 150% is over 100%" in msg


def test_all_problems_reported_at_once() -> None:
    msg = errors("features:\n  a: 'a + 1'\nsegments:\n  - {name: x, when: 'TRUE', holdout: 200}\n"
                 "  - {name: x, when: {field: d, within: 'next week'}}\n")
    assert msg.startswith("4 problems in configuration:")
    assert "seg.yaml:2: cycle between features: a -> a" in msg
    assert "seg.yaml:5: within: expected 'last N days|weeks|months|years', got 'next week'" in msg


def test_schema_errors_carry_lines() -> None:
    msg = errors("segments:\n  - name: a\n    when: {field: x, bigger: 3}\n")
    assert msg.startswith("seg.yaml:3:")
    msg = errors("segments:\n  - name: a\n    when: 'TRUE'\n    colour: red\n")
    assert "seg.yaml:4" in msg and "colour" in msg  # the unknown key's own line


def test_campaign_naming_unknown_segment_and_builtin_feature_name() -> None:
    msg = errors("features:\n  frequency: '1'\nholdouts:\n  campaigns:\n    bf: {percent: 5, segments: [nope]}\n"
                 "segments: [{name: a, when: 'TRUE'}]\n")
    assert "seg.yaml:2: feature 'frequency' is built in" in msg
    assert "seg.yaml:5: campaign 'bf': unknown segment 'nope'" in msg


def test_priority_needs_a_group_and_rfm_ranges() -> None:
    msg = errors("rfm:\n  segments:\n    - {name: x, r: 5-3}\nsegments:\n  - {name: a, when: 'TRUE', priority: 1}\n")
    assert "seg.yaml:3: range 5-3 is empty" in msg
    assert "seg.yaml:5: segment 'a': priority only matters with an exclusive group" in msg


def test_yaml_syntax_error_has_line() -> None:
    assert errors("segments:\n  - name: [a\n").startswith("seg.yaml:")


def test_condition_tree_is_parsed_with_lines() -> None:
    spec = parse_segments_text(
        "segments:\n  - name: a\n    when:\n      all:\n        - {field: frequency, gte: 2}\n"
        "        - not: {field: city, in: [Madrid]}\n        - \"recency_days < 30\"\n", "seg.yaml")
    cond = spec.segments[0].when
    assert cond.op == "all" and [c.op for c in cond.children] == ["gte", "not", "sql"]
    assert [c.loc.line for c in cond.children] == [5, 6, 7]
    assert cond.children[1].children[0].value == ("Madrid",)


def test_unknown_output_column_reported_with_segment_line(ws, kit) -> None:  # type: ignore[no-untyped-def]
    body = "segments:\n  - {name: a, when: 'TRUE'}\n  - {name: b, when: 'TRUE', columns: [customer_id, colour]}\n"
    with pytest.raises(ConfigError) as err:
        kit.run(ws, body, kit.customers(["C1"]))
    assert str(err.value) == ("segments.yaml:9: segment 'b': output column 'colour' is not a feature or customer "
                              "column")


def test_input_paths_in_the_file_are_relative_to_it(ws, kit) -> None:  # type: ignore[no-untyped-def]
    from crmtool.segments import api

    (kit.tmp / "data").mkdir()
    kit.write_csv("data/o.csv", ["customer_id", "order_date", "amount", "channel"], [["C1", "2026-10-01", "5", "web"]])
    (kit.tmp / "seg.yaml").write_text(
        "inputs:\n  customers: {consent: null}\n  orders: {path: data/o.csv}\n"
        "segments: [{name: b, when: {field: frequency, eq: 1}}]\n", encoding="utf-8")
    r = api.segment(ws, kit.customers(["C1", "C2"]), kit.tmp / "seg.yaml", out_dir=kit.tmp / "o", as_of=kit.as_of)
    assert (r.stats.orders_read, r.segments[0].send) == (1, 1)
