"""Text and CSV renderings of campaign results and plans (they read results, never recompute)."""

from __future__ import annotations

import csv
import io
from typing import Any

from crmtool.campaigns.api import PlanResult, StartResult
from crmtool.campaigns.results import CampaignResults, Comparison, Group


def _pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x * 100:.{digits}f}%"


def _pp(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:+.2f} pp"


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = [f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths)]
    return ["  ".join(f.format(c) for f, c in zip(fmt, r, strict=True)).rstrip() for r in [header, *rows]]


def _comparison_lines(c: Comparison) -> list[str]:
    rel = "-" if c.relative_uplift is None else f"{c.relative_uplift * 100:+.1f}%"
    rel_ci = "" if c.relative_low is None else f" [{c.relative_low * 100:+.1f}%, {c.relative_high * 100:+.1f}%]"  # type: ignore[operator]
    lines = [
        f"{c.arm} vs {c.control}: conversion {_pp(c.uplift)} [95% CI {_pp(c.uplift_low)}, {_pp(c.uplift_high)}], "
        f"p = {c.p_value:.3g}; relative {rel}{rel_ci}",
        f"  incremental conversions {c.incremental_conversions:.1f} "
        f"[{c.incremental_conversions_low:.1f}, {c.incremental_conversions_high:.1f}]",
    ]
    if c.rpc_diff is not None:
        lines.append(
            f"  revenue per customer {c.rpc_diff:+.2f} [95% CI {c.rpc_low:+.2f}, {c.rpc_high:+.2f}], "
            f"p = {c.rpc_p_value:.3g}; incremental revenue {_money(c.incremental_revenue)} "
            f"[{_money(c.incremental_revenue_low)}, {_money(c.incremental_revenue_high)}]")
    if c.roi is not None:
        lines.append(f"  cost {_money(c.cost)}; ROI {c.roi * 100:+.0f}% "
                     f"[{c.roi_low * 100:+.0f}%, {c.roi_high * 100:+.0f}%]")  # type: ignore[operator]
    lines.append(f"  minimum detectable effect at these sizes: {_pp(c.mde)} (alpha 5%, power 80%)")
    return lines


def _group_lines(g: Group) -> list[str]:
    rows = [[a.arm, str(a.customers), str(a.conversions), _pct(a.conversion_rate), _money(a.revenue_per_customer),
             _money(a.aov)] for a in g.arms]
    lines = _table(["arm", "customers", "conversions", "rate", "revenue/customer", "AOV"], rows)
    for c in g.comparisons:
        lines += _comparison_lines(c)
    variants = [c for c in g.comparisons if c.arm != "all_variants"]
    if len(variants) > 1:
        lines.append(f"winner: {g.winner}" if g.winner else
                     "winner: none (the intervals between variants do not exclude 0)")
    return lines


def results_text(r: CampaignResults) -> str:
    c = r.campaign
    lines = [f"campaign {c['name']} (segment {c['segment']}), window {r.start_date} to {r.end_date} "
             f"(exclusive), conversion = {r.conversion}"]
    for g in r.groups:
        lines.append("")
        if g.value is not None:
            lines.append(f"{r.by} = {g.value}")
        lines += _group_lines(g)
    lines += ["", f"run {r.run_id}"]
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ["group", "arm", "customers", "conversions", "conversion_rate", "orders", "revenue",
               "revenue_per_customer", "aov", "uplift", "uplift_low", "uplift_high", "p_value",
               "relative_uplift", "relative_low", "relative_high", "rpc_diff", "rpc_low", "rpc_high",
               "rpc_p_value", "incremental_conversions", "incremental_revenue", "incremental_revenue_low",
               "incremental_revenue_high", "mde", "cost", "roi", "roi_low", "roi_high"]


def results_csv(r: CampaignResults) -> str:
    """One row per (group, arm): the arm's figures and, for variants, the comparison with the holdout."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for g in r.groups:
        comps = {c.arm: c.as_dict() for c in g.comparisons}
        names = [a.arm for a in g.arms] + (["all_variants"] if "all_variants" in comps else [])
        arms = {a.arm: a.as_dict() for a in g.arms}
        for name in names:
            row: dict[str, Any] = {"group": "" if g.value is None else g.value, "arm": name}
            row |= arms.get(name, {}) | comps.get(name, {})
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def start_text(s: StartResult) -> str:
    c = s.campaign
    head = "recorded" if s.first_run else "refreshed"
    arms = ", ".join(f"{a} {n}" for a, n in s.arms.items())
    send = ", ".join(f"{a} {n}" for a, n in s.send.items()) or "nobody"
    return "\n".join([
        f"{head} campaign {c.name} on segment {c.segment} (from {s.source})",
        f"members by arm: {arms} ({s.newcomers} new this run)",
        f"send list: {send}; left out by the segment run's protections: {s.excluded}",
        f"holdout {c.holdout_percent:g}%, global control {c.global_control_percent:g}%, "
        f"start date {c.start_date}" + ("" if c.cost is None else f", cost {_money(c.cost)}"),
        f"wrote {s.outputs['send']}, {s.outputs['holdout']}",
        f"run {s.run_id}",
    ]) + "\n"


def plan_text(p: PlanResult) -> str:
    return (f"to detect {_pp(p.effect)} over a baseline of {_pct(p.baseline)} (power {p.power:.0%}, "
            f"alpha {p.alpha:.0%}, two-sided) with a {p.holdout_share:.0%} holdout:\n"
            f"holdout {p.holdout_customers:,} customers, treated {p.treated_customers:,}, "
            f"total {p.total:,}\n")
