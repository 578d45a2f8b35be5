"""KPI reports as text (with a trend sparkline), JSON and CSV. Renderers read the report only."""

from __future__ import annotations

import csv
import io
import json

from crmtool.kpis.evaluate import KpiReport, KpiResult

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None], width: int = 30) -> str:
    """``▁▃▅█``: the last ``width`` values scaled between their min and max; a gap is a space."""
    vals = values[-width:]
    seen = [v for v in vals if v is not None]
    if not seen:
        return ""
    lo, hi = min(seen), max(seen)
    span = hi - lo
    return "".join(" " if v is None else BARS[0 if span == 0 else round((v - lo) / span * (len(BARS) - 1))]
                   for v in vals)


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if float(v).is_integer() and abs(v) >= 1 else f"{v:.4g}"


def _target(k: KpiResult) -> str:
    lo, hi = k.spec.target_min, k.spec.target_max
    if lo is not None and hi is not None:
        return f"{_num(lo)}..{_num(hi)}"
    if lo is not None:
        return f">= {_num(lo)}"
    return f"<= {_num(hi)}" if hi is not None else "-"


def _status(k: KpiResult) -> str:
    why = []
    if k.on_target is False:
        why.append("off target")
    if k.anomalies:
        why.append("anomaly")
    word = k.status.value.upper() if k.status.value != "pass" else "pass"
    return word + (f" ({', '.join(why)})" if why else "")


def to_text(report: KpiReport) -> str:
    head = ("kpi", "latest", "target", "expected", "trend", "status")
    rows = [head]
    for k in report.kpis:
        expected = f"{_num(k.expected[0])}..{_num(k.expected[1])}" if k.expected else "-"
        rows.append((k.name, _num(k.latest), _target(k), expected, sparkline([v for _d, v in k.series]),
                     _status(k)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append(f"{len(report.kpis)} KPIs since {report.since.isoformat()} by {report.by}: "
                 f"{sum(k.status.value == 'fail' for k in report.kpis)} failing")
    for k in report.kpis:
        lines += [f"  {k.name}: {note}" for note in k.notes]
    return "\n".join(lines) + "\n"


def to_json(report: KpiReport) -> str:
    return json.dumps(report.as_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def to_csv(report: KpiReport) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["kpi", "period", "value", "status", "anomaly"])
    for k in report.kpis:
        for d, v in k.series:
            w.writerow([k.name, d.isoformat(), "" if v is None else repr(v), k.status.value,
                        "true" if d in k.anomalies else "false"])
    return buf.getvalue()
