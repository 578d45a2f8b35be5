"""The report in a real headless Chromium: it loads without console errors or network requests,
every chart draws marks, and a screenshot is kept (tests/artifacts/, ignored by git)."""

from __future__ import annotations

import time
from pathlib import Path

from crmtool.htmlreport import build_report
from crmtool.workspace import Workspace

from .browser import headless_chromium

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

CHART_MARKS = """
return Array.from(document.querySelectorAll('.js-plotly-plot')).map(function (div) {
  return {id: div.id, svg: div.querySelectorAll('svg.main-svg').length,
          marks: div.querySelectorAll('path.point, path.js-line, g.point path').length};
});"""


def _wait_for_charts(driver: object, expected: int, timeout: float = 30.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        charts = driver.execute_script(CHART_MARKS)  # type: ignore[attr-defined]
        if len(charts) >= expected and all(c["marks"] for c in charts):
            return charts
        if time.monotonic() > deadline:
            return charts
        time.sleep(0.25)


def test_report_renders_in_chromium(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    with Workspace(history) as ws:
        result = build_report(ws, out, since="all")
    with headless_chromium() as driver:
        driver.get(out.resolve().as_uri())
        charts = _wait_for_charts(driver, result.charts)
        assert len(charts) == result.charts >= 9
        for chart in charts:
            assert chart["svg"], f"{chart['id']} has no SVG"
            assert chart["marks"], f"{chart['id']} draws no marks"
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert not errors, errors
        resources = driver.execute_script(
            "return performance.getEntriesByType('resource').map(function (r) { return r.name; });")
        assert all(url.startswith(("file:", "data:", "blob:")) for url in resources), resources
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1440, int(height) + 120)
        time.sleep(0.5)  # plotly redraws at the new size
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "report.png"
        assert driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 50_000
    print(f"screenshot: {shot}")


def test_empty_report_renders_in_chromium(tmp_path: Path) -> None:
    out = tmp_path / "empty.html"
    with Workspace(tmp_path / "new.duckdb") as ws:
        build_report(ws, out)
    with headless_chromium(1280, 600) as driver:
        driver.get(out.resolve().as_uri())
        assert "No history yet" in driver.find_element("tag name", "body").text
        assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "report-empty.png"))
