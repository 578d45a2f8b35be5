"""Machine-readable renderings of check results: JSON and JUnit XML (no terminal code here).

Renderers read results; they never recompute them. The JSON carries ``schema_version`` and is
described by ``crmtool rules schema results`` (``crmtool/schemas/results.schema.json``).
"""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET

from crmtool.status import Status


def to_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _properties(case: ET.Element, rule: dict[str, Any]) -> None:
    props = ET.SubElement(case, "properties")
    for name in ("status", "severity", "action", "threshold", "checked", "failed", "failed_share", "fixed",
                 "rejected", "source"):
        if name in rule:
            ET.SubElement(props, "property", name=name, value=str(rule[name]))
    if rule.get("example_keys"):
        ET.SubElement(props, "property", name="example_keys", value=", ".join(rule["example_keys"]))
    if rule.get("example_lines"):
        ET.SubElement(props, "property", name="example_lines",
                      value=", ".join(str(n) for n in rule["example_lines"]))


def to_junit(report: dict[str, Any], suite_name: str = "crmtool", *, fail_on_warning: bool = False) -> str:
    """Each check is a test case (unparseable rows first, then every rule) with its time and
    properties (status, severity, threshold, counts, source). ``fail`` is a failure; ``warn``
    passes with a system-out note and a ``status=warn`` property (or is a failure too with
    ``fail_on_warning``, matching ``validate --fail-on warning``)."""
    rules = report.get("rules", [])
    failing = (Status.FAIL, Status.WARN) if fail_on_warning else (Status.FAIL,)
    failures = sum(1 for r in rules if r["status"] in failing)
    total_time = sum(float(r.get("seconds") or 0.0) for r in rules)
    suite = ET.Element("testsuite", name=f"{suite_name}: {report.get('input', '')}", tests=str(len(rules)),
                       failures=str(failures), errors="0", skipped="0", time=f"{total_time:.3f}")
    suite_props = ET.SubElement(suite, "properties")
    for name in ("schema_version", "run_id", "status", "rows", "parse_rejects", "record_key"):
        if name in report:
            ET.SubElement(suite_props, "property", name=name, value=str(report[name]))
    warnings = 0
    for rule in rules:
        case = ET.SubElement(suite, "testcase", classname=f"{suite_name}.{rule['kind']}", name=rule["rule"],
                             time=f"{float(rule.get('seconds') or 0.0):.3f}")
        _properties(case, rule)
        summary = (f"{rule['failed']} of {rule['checked']} rows failed ({rule['failed_share']:.2%}); "
                   f"threshold {rule['threshold']}; source {rule['source']}")
        if rule["status"] in failing:
            failure = ET.SubElement(case, "failure", message=summary, type=rule["kind"])
            failure.text = "\n".join(f"{n} x {reason}" for reason, n in rule["reasons"].items())
        elif rule["status"] == Status.WARN:
            warnings += 1
            ET.SubElement(case, "system-out").text = "warning: " + summary
    ET.SubElement(suite_props, "property", name="warnings", value=str(warnings))
    suites = ET.Element("testsuites", tests=str(len(rules)), failures=str(failures), time=f"{total_time:.3f}")
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def results_schema() -> dict[str, Any]:
    """The JSON Schema of ``--format json`` results (``crmtool rules schema results``)."""
    from crmtool.schemas import load_schema

    return load_schema("results")
