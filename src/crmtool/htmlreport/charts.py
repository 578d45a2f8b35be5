"""Plotly figures for each section of the report, from :class:`~crmtool.htmlreport.data.ReportData`.

Plotly (MIT, maintained by Plotly Inc., one self-contained JS bundle that works offline) draws
every chart; the figures here are plain ``plotly.graph_objects`` with one shared look.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crmtool.htmlreport.kpi import KpiSeries

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from crmtool.htmlreport.data import ReportData

GREEN, RED, AMBER, GREY, BLUE = "#2e7d32", "#c62828", "#ef8f00", "#9e9e9e", "#1f5fa8"
STATUS_COLOURS = {"valid": GREEN, "risky": AMBER, "invalid": RED, "unknown": GREY}
SEVERITY_COLOURS = {"error": RED, "warning": AMBER}


@dataclass(frozen=True)
class Chart:
    """A figure with its place on the page."""

    section: str
    title: str
    figure: go.Figure
    note: str = ""


def _layout(fig: go.Figure, *, height: int = 300, percent: bool = False, legend: bool = True) -> go.Figure:
    fig.update_layout(
        template="plotly_white", height=height, margin={"l": 56, "r": 16, "t": 16, "b": 40},
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        showlegend=legend, legend={"orientation": "h", "y": -0.18, "x": 0},
        hovermode="closest",
    )
    if percent:
        fig.update_yaxes(tickformat=".0%")
    return fig


def kpi_chart(series: KpiSeries) -> go.Figure:
    """Values over time, the expected range, the target and anomalies marked."""
    import plotly.graph_objects as go

    t = [p[0] for p in series.points]
    fmt = ".1%" if series.percent else ",.4~g"
    fig = go.Figure()
    low = [p[2] for p in series.points]
    high = [p[3] for p in series.points]
    if any(v is not None for v in low):
        fig.add_trace(go.Scatter(x=t, y=high, mode="lines", line={"width": 0}, hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=t, y=low, mode="lines", line={"width": 0}, fill="tonexty",
                                 fillcolor="rgba(31,95,168,0.12)", name="expected range", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=t, y=[p[1] for p in series.points], mode="lines+markers", name=series.label,
                             line={"color": BLUE, "width": 2}, marker={"size": 6},
                             hovertemplate="%{x|%Y-%m-%d %H:%M}<br>%{y:" + fmt + "}<extra></extra>"))
    odd = [p for p in series.points if p[4]]
    if odd:
        fig.add_trace(go.Scatter(x=[p[0] for p in odd], y=[p[1] for p in odd], mode="markers", name="anomaly",
                                 marker={"color": RED, "size": 12, "symbol": "x"},
                                 hovertemplate="anomaly %{x|%Y-%m-%d %H:%M}<br>%{y:" + fmt + "}<extra></extra>"))
    for value, word in ((series.target_min, "≥"), (series.target_max, "≤")):
        if value is not None:
            shown = f"{value:.0%}" if series.percent else f"{value:,g}"
            fig.add_hline(y=value, line={"color": GREEN, "dash": "dash", "width": 1.5},
                          annotation_text=f"target {word} {shown}", annotation_position="top left")
    _layout(fig, height=260, percent=series.percent, legend=bool(odd) or any(v is not None for v in low))
    fig.update_yaxes(tickformat=".1%" if series.percent else ",.4~g")
    fig.update_xaxes(tickformat="%b %d", nticks=8)
    if len(t) == 1:  # one run: a day either side, so the axis does not count hours
        from datetime import timedelta

        fig.update_xaxes(range=[t[0] - timedelta(days=1), t[0] + timedelta(days=1)], dtick=86_400_000)
    return fig


def _whole_numbers(fig: go.Figure, values: list[Any], axis: str = "y") -> go.Figure:
    """Count axes tick in whole numbers (no 0.2 clusters)."""
    top = max([abs(v or 0) for v in values] or [0])
    update = fig.update_yaxes if axis == "y" else fig.update_xaxes
    update(rangemode="tozero", tickformat=",d", **({"dtick": 1} if top <= 8 else {}))
    return fig


def _email_mix(data: ReportData) -> go.Figure:
    import plotly.graph_objects as go

    fig = go.Figure()
    runs = sorted({r[0] for r in data.email_mix})
    labels = [f"{t:%Y-%m-%d %H:%M}" for t in runs]
    for status in sorted({r[1] for r in data.email_mix}, key=lambda s: list(STATUS_COLOURS).index(s)
                         if s in STATUS_COLOURS else 99):
        rows = {r[0]: r[2] for r in data.email_mix if r[1] == status}
        fig.add_trace(go.Bar(x=labels, y=[rows.get(t, 0) for t in runs], name=status,
                             marker_color=STATUS_COLOURS.get(status, BLUE),
                             hovertemplate=f"{status}: %{{y}} rows<extra></extra>"))
    fig.update_layout(barmode="stack", barnorm="percent")
    fig.update_yaxes(ticksuffix="%")
    fig.update_xaxes(type="category")
    return _layout(fig)


def _bar(x: list[Any], y: list[Any], *, colour: str = BLUE, horizontal: bool = False, hover: str = "") -> go.Figure:
    import plotly.graph_objects as go

    trace = go.Bar(y=x, x=y, orientation="h", marker_color=colour) if horizontal else \
        go.Bar(x=x, y=y, marker_color=colour)
    if hover:
        trace.hovertemplate = hover
    return _whole_numbers(_layout(go.Figure(trace), legend=False), y, "x" if horizontal else "y")


def _failing_rules(data: ReportData) -> go.Figure:
    import plotly.graph_objects as go

    rows = list(reversed(data.failing_rules))  # largest at the top of a horizontal bar chart
    fig = go.Figure(go.Bar(
        y=[r[0] for r in rows], x=[r[2] or 0 for r in rows], orientation="h",
        marker_color=[SEVERITY_COLOURS.get(r[1], GREY) for r in rows],
        customdata=[[r[1], r[3]] for r in rows],
        hovertemplate="%{y} (%{customdata[0]})<br>failed in the latest run: %{x}<br>"
                      "runs with failures: %{customdata[1]}<extra></extra>"))
    fig.update_yaxes(automargin=True)
    _whole_numbers(fig, [r[2] for r in rows], "x")
    return _layout(fig, height=max(240, 28 * len(rows) + 80), legend=False)


def _segment_sizes(data: ReportData) -> go.Figure:
    import plotly.graph_objects as go

    fig = go.Figure()
    for segment in sorted({r[2] for r in data.segment_sizes}):
        rows = [r for r in data.segment_sizes if r[2] == segment]
        fig.add_trace(go.Scatter(x=[r[0] for r in rows], y=[r[3] for r in rows], mode="lines+markers", name=segment,
                                 customdata=[r[4] for r in rows],
                                 hovertemplate=f"{segment}<br>%{{x}}: %{{y}} members, %{{customdata}} to send"
                                               "<extra></extra>"))
    fig.update_layout(legend={"orientation": "v", "y": 1, "x": 1.02})
    _layout(fig, height=340)
    fig.update_layout(legend={"orientation": "v", "y": 1, "x": 1.02}, margin={"r": 160})
    return fig


def _segment_flows(data: ReportData) -> go.Figure:
    import plotly.graph_objects as go

    rows = data.segment_flows
    names = [r[0] for r in rows]
    fig = go.Figure([
        go.Bar(y=names, x=[r[1] for r in rows], orientation="h", name="entered", marker_color=GREEN,
               hovertemplate="%{y}: %{x} entered<extra></extra>"),
        go.Bar(y=names, x=[-r[2] for r in rows], orientation="h", name="exited", marker_color=RED,
               customdata=[r[2] for r in rows], hovertemplate="%{y}: %{customdata} exited<extra></extra>"),
    ])
    fig.update_layout(barmode="relative")
    fig.update_yaxes(automargin=True)
    return _layout(fig, height=max(240, 26 * len(rows) + 90))


def _diffs(data: ReportData) -> go.Figure:
    import plotly.graph_objects as go

    labels = [f"{r[0]:%Y-%m-%d %H:%M}" for r in data.diffs]
    fig = go.Figure([go.Bar(x=labels, y=[r[i] for r in data.diffs], name=name, marker_color=colour)
                     for i, name, colour in ((1, "added", GREEN), (2, "removed", RED), (3, "changed", AMBER))])
    fig.update_layout(barmode="group")
    fig.update_xaxes(type="category")
    _whole_numbers(fig, [v for r in data.diffs for v in r[1:]])
    return _layout(fig)


def _campaigns(data: ReportData) -> list[Chart]:
    import plotly.graph_objects as go

    charts = []
    for campaign in sorted({r[0] for r in data.campaigns}):
        rows = [r for r in data.campaigns if r[0] == campaign]
        fig = go.Figure(go.Bar(x=[r[1] for r in rows], y=[r[3] for r in rows], marker_color=BLUE,
                               customdata=[r[2] for r in rows], name="conversion rate",
                               hovertemplate="%{x}: %{y:.2%} of %{customdata:,} customers<extra></extra>"))
        lifts = [r for r in rows if r[4] is not None]
        if lifts:
            fig.add_trace(go.Scatter(
                x=[r[1] for r in lifts], y=[r[4] for r in lifts], mode="markers", name="uplift vs holdout",
                marker={"color": GREEN, "size": 10, "symbol": "diamond"}, yaxis="y2",
                error_y={"type": "data", "symmetric": False,
                         "array": [(r[6] - r[4]) if r[6] is not None else 0 for r in lifts],
                         "arrayminus": [(r[4] - r[5]) if r[5] is not None else 0 for r in lifts]},
                hovertemplate="%{x}: uplift %{y:.2%}<extra></extra>"))
            fig.update_layout(yaxis2={"overlaying": "y", "side": "right", "tickformat": ".1%", "showgrid": False,
                                      "zeroline": True, "title": {"text": "uplift"}})
        _layout(fig, percent=True)
        charts.append(Chart("campaigns", f"Campaign {campaign}: conversion by arm, uplift with its interval", fig))
    return charts


def build_charts(data: ReportData) -> list[Chart]:
    """Every chart the data can fill, in page order; sections without data get none."""
    charts = [Chart("kpis", s.label, kpi_chart(s)) for s in data.kpis]
    if data.failing_rules:
        charts.append(Chart("rules", "Top failing rules (failed rows in the latest checked run)",
                            _failing_rules(data), "red: error rules, amber: warnings"))
    if data.email_mix:
        charts.append(Chart("emails", "Email status mix per emails run", _email_mix(data)))
    if data.cluster_sizes:
        charts.append(Chart("dedupe", "Duplicate clusters by size (latest dedupe run)",
                            _bar([str(r[0]) for r in data.cluster_sizes], [r[1] for r in data.cluster_sizes],
                                 hover="%{y} clusters of %{x} records<extra></extra>")))
    if data.segment_sizes:
        charts.append(Chart("segments", "Segment sizes over time", _segment_sizes(data)))
    if data.segment_flows and data.segment_flow_runs:
        prev, cur = data.segment_flow_runs
        charts.append(Chart("segments", f"Entered and exited, {prev} -> {cur}", _segment_flows(data)))
    if data.diffs:
        charts.append(Chart("diffs", "Changes between exports (crmtool diff)", _diffs(data)))
    charts += _campaigns(data)
    return charts
