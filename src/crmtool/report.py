"""Machine-readable renderings of check results: JSON and JUnit XML (no terminal code here)."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET


def to_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def to_junit(report: dict[str, Any], suite_name: str = "crmtool", *, fail_on_warning: bool = False) -> str:
    """Each rule is a test case: ``fail`` is a failure, ``warn`` passes with a system-out note
    (or is a failure too with ``fail_on_warning``, matching ``validate --fail-on warning``)."""
    rules = report.get("rules", [])
    failing = ("fail", "warn") if fail_on_warning else ("fail",)
    failures = sum(1 for r in rules if r["status"] in failing)
    suite = ET.Element("testsuite", name=f"{suite_name}: {report.get('input', '')}", tests=str(len(rules)),
                       failures=str(failures), errors="0", skipped="0")
    for rule in rules:
        case = ET.SubElement(suite, "testcase", classname=f"{suite_name}.{rule['kind']}", name=rule["rule"])
        summary = (f"{rule['failed']} of {rule['checked']} rows failed ({rule['failed_share']:.2%}); "
                   f"threshold {rule['threshold']}; source {rule['source']}")
        if rule["status"] in failing:
            failure = ET.SubElement(case, "failure", message=summary, type=rule["kind"])
            failure.text = "\n".join(f"{n} x {reason}" for reason, n in rule["reasons"].items())
        elif rule["status"] == "warn":
            ET.SubElement(case, "system-out").text = "warning: " + summary
    suites = ET.Element("testsuites", tests=str(len(rules)), failures=str(failures))
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
