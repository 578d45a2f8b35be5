"""The HTML page: one file with its CSS, plotly.js and every figure inline (nothing fetched at view time)."""

from __future__ import annotations

import json
from html import escape

from crmtool.htmlreport.charts import Chart
from crmtool.htmlreport.data import ReportData

SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("kpis", "Data quality over time", "run crmtool clean, validate, emails or dedupe to record history"),
    ("rules", "Failing rules", "no rule has failed in this period"),
    ("emails", "Email status mix", "run crmtool emails to classify addresses"),
    ("dedupe", "Duplicates", "no duplicate clusters in the latest dedupe run"),
    ("segments", "Segments", "run crmtool segment on two dates to see sizes and flows"),
    ("diffs", "Changes between exports", "run crmtool diff OLD NEW --key ID"),
    ("campaigns", "Campaign results", "no campaign results recorded in this period"),
)

CSS = """
:root { --fg: #1d2330; --muted: #5b6475; --line: #e3e6ec; --bg: #f6f7f9; --pass: #2e7d32; --warn: #ef8f00;
        --fail: #c62828; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       background: var(--bg); }
header { padding: 20px 32px 12px; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: var(--muted); }
main { padding: 16px 32px 40px; max-width: 1480px; margin: 0 auto; }
section { margin-top: 20px; }
h2 { font-size: 17px; margin: 0 0 10px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 150px; }
.card b { display: block; font-size: 22px; }
.card span { color: var(--muted); font-size: 12px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 14px; }
.chart { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px 4px; min-width: 0; }
.chart h3 { margin: 0 0 4px; font-size: 14px; font-weight: 600; }
.chart p { margin: 0 0 4px; color: var(--muted); font-size: 12px; }
.empty { color: var(--muted); background: #fff; border: 1px dashed var(--line); border-radius: 8px;
         padding: 12px 16px; }
table { border-collapse: collapse; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
th, td { text-align: left; padding: 6px 12px; border-bottom: 1px solid var(--line); }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; }
.pass, .ok { background: var(--pass); } .warn { background: var(--warn); } .fail, .error { background: var(--fail); }
.aborted, .running { background: #757575; }
footer { color: var(--muted); font-size: 12px; padding: 0 32px 24px; }
"""


def _badge(status: str) -> str:
    return f'<span class="badge {escape(status)}">{escape(status)}</span>'


def _cards(data: ReportData) -> str:
    runs = sum(r[2] for r in data.runs)
    failed = sum(r[2] for r in data.runs if r[1] in ("fail", "error", "aborted"))
    missed = sum(1 for k in data.kpis if str(k.status) == "fail")
    anomalies = sum(k.anomalies for k in data.kpis)
    cards = [(runs, "runs in this period"), (failed, "runs failed or stopped"),
             (f"{missed} of {len(data.kpis)}", "KPIs missing their target"), (anomalies, "anomalies flagged")]
    return '<div class="cards">' + "".join(f'<div class="card"><b>{v}</b><span>{escape(label)}</span></div>'
                                           for v, label in cards) + "</div>"


def _kpi_table(data: ReportData) -> str:
    rows = []
    for k in data.kpis:
        def num(v: float, percent: bool = k.percent) -> str:
            return f"{v:.0%}" if percent else f"{v:,g}"

        target = " and ".join(t for t in (f"≥ {num(k.target_min)}" if k.target_min is not None else "",
                                          f"≤ {num(k.target_max)}" if k.target_max is not None else "") if t) or "—"
        latest = f"{k.latest:.1%}" if k.percent else f"{k.latest:,.4g}"
        rows.append(f"<tr><td>{escape(k.label)}</td><td class='n'>{latest}</td><td>{target}</td>"
                    f"<td class='n'>{k.anomalies}</td><td>{_badge(str(k.status))}</td></tr>")
    return ("<table><thead><tr><th>KPI</th><th>latest</th><th>target</th><th>anomalies</th><th>status</th></tr>"
            "</thead><tbody>" + "".join(rows) + "</tbody></table>")


def _runs_table(data: ReportData) -> str:
    rows = "".join(f"<tr><td>{escape(c)}</td><td>{_badge(s)}</td><td class='n'>{n}</td><td>{t:%Y-%m-%d %H:%M}</td></tr>"
                   for c, s, n, t in data.runs)
    return ("<table><thead><tr><th>command</th><th>status</th><th>runs</th><th>last started (UTC)</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _figure_script(div: str, chart: Chart) -> str:
    from plotly.utils import PlotlyJSONEncoder

    spec = chart.figure.to_plotly_json()
    payload = json.dumps([spec.get("data", []), spec.get("layout", {})], cls=PlotlyJSONEncoder)
    payload = payload.replace("</", "<\\/")  # a name can never close the script element
    return (f"(function(){{var f={payload};Plotly.newPlot({json.dumps(div)},f[0],f[1],"
            f"{{responsive:true,displayModeBar:false}});}})();")


def render(data: ReportData, charts: list[Chart], *, title: str) -> str:
    """The whole page as text."""
    window = f"since {data.since:%Y-%m-%d}" if data.since else "all history"
    head = (f"<header><h1>{escape(title)}</h1><p>Generated {data.generated_at:%Y-%m-%d %H:%M} UTC · {window} · "
            f"counts and shares only, no customer data</p></header>")
    if data.empty:
        body = ("<main><section><p class='empty'>No history yet: this workspace has no recorded runs in this "
                "period. Run <code>crmtool clean</code>, <code>validate</code>, <code>emails</code>, "
                "<code>dedupe</code>, <code>segment</code> or <code>diff</code>, then make the report again.</p>"
                "</section></main>")
        return _document(title, head + body, "")
    parts = ["<main><section>", _cards(data), "</section>"]
    scripts: list[str] = []
    for key, heading, empty in SECTIONS:
        parts.append(f"<section id='{key}'><h2>{escape(heading)}</h2>")
        if key == "kpis" and data.kpis:
            parts.append(_kpi_table(data) + "<div style='height:12px'></div>")
        mine = [c for c in charts if c.section == key]
        if not mine:
            parts.append(f"<p class='empty'>Nothing to show: {escape(empty)}.</p></section>")
            continue
        parts.append("<div class='grid'>")
        for chart in mine:
            div = f"chart-{len(scripts) + 1}"
            note = f"<p>{escape(chart.note)}</p>" if chart.note else ""
            parts.append(f"<div class='chart'><h3>{escape(chart.title)}</h3>{note}<div id='{div}'></div></div>")
            scripts.append(_figure_script(div, chart))
        parts.append("</div></section>")
    parts.append(f"<section><h2>Runs</h2>{_runs_table(data)}</section></main>")
    return _document(title, head + "".join(parts), "\n".join(scripts))


def _document(title: str, body: str, scripts: str) -> str:
    plotly_js = ""
    if scripts:
        from plotly.offline import get_plotlyjs

        plotly_js = f"<script>{get_plotlyjs()}</script>"
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{escape(title)}</title><style>{CSS}</style>{plotly_js}</head><body>{body}"
            f"<footer>crmtool report · charts by plotly.js, inline</footer>"
            f"{'<script>' + scripts + '</script>' if scripts else ''}</body></html>\n")
