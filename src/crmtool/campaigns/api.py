"""Public API of campaigns: what ``crmtool campaign start | results | plan`` call.

>>> from crmtool.campaigns.api import start_campaign, campaign_results
>>> with open_workspace("crmtool.duckdb") as ws:                          # doctest: +SKIP
...     started = start_campaign(ws, "black_friday", segment="high_value", holdout=10,
...                              variants=[("A", 0.5), ("B", 0.5)], cost=1200, out_dir=Path("out"))
...     res = campaign_results(ws, "black_friday", orders=Path("pedidos.csv"), window_days=30)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.campaigns import assign, measure, stats, store
from crmtool.campaigns.results import ALL_VARIANTS, CampaignResults, Group, analyse, window
from crmtool.errors import UsageError
from crmtool.status import Status
from crmtool.steps import Step
from crmtool.workspace import Workspace

if TYPE_CHECKING:
    from crmtool.io.writers import OutputOptions

DEFAULT_HOLDOUT = 10.0
STEP = "campaign"  # the step of campaign results in crm_metrics (read by the KPIs and the HTML report)


@dataclass
class StartResult:
    run_id: str
    campaign: store.Campaign
    first_run: bool
    source: str  # segment run id or folder
    newcomers: int
    arms: dict[str, int]  # members per arm (all runs)
    send: dict[str, int]  # customers on this run's send list per variant
    excluded: int  # segment members the segment run's protections keep out
    outputs: dict[str, Path] = field(default_factory=dict)
    status: Status = Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": str(self.status), "campaign": self.campaign.as_dict(),
                "first_run": self.first_run, "source": self.source, "newcomers": self.newcomers,
                "arms": self.arms, "send": self.send, "excluded": self.excluded,
                "outputs": {k: str(v) for k, v in self.outputs.items()}}


def _check_arms(variants: list[tuple[str, float]] | None) -> tuple[tuple[str, float], ...]:
    arms = tuple(variants or [("send", 1.0)])
    names = [a for a, _ in arms]
    reserved = set(store.NOT_SENT) | {ALL_VARIANTS}
    if len(set(names)) != len(names) or reserved & set(names):
        raise UsageError(f"--variants: names must be distinct and not {', '.join(sorted(reserved))}")
    if any(w <= 0 for _, w in arms) or abs(sum(w for _, w in arms) - 1) > 1e-6:
        raise UsageError("--variants: weights must be positive and add up to 1", "e.g. A:0.5,B:0.5")
    return arms


def _definition(ws: Workspace, name: str, segment: str, run_id: str, variants: list[tuple[str, float]] | None,
                holdout: float | None, global_control: float | None, cost: float | None,
                start_date: date | None) -> tuple[store.Campaign, bool, str]:
    """The stored campaign (options given on a rerun must agree with it) or a new one."""
    gc, gsalt = store.global_control(ws.con, global_control)
    old = store.load(ws.con, name)
    for label, pct in (("--holdout", holdout), ("--global-control", gc)):
        if pct is not None and not 0 <= pct <= 100:
            raise UsageError(f"{label} {pct:g}% is not between 0 and 100")
    if old is None:
        arms = _check_arms(variants)
        new = store.Campaign(name, segment, arms, DEFAULT_HOLDOUT if holdout is None else holdout, gc,
                             f"campaign:{name}", cost, start_date or date.today(), run_id, run_id, None)
        return new, True, gsalt
    if segment != old.segment:
        raise UsageError(f"campaign {name!r} targets segment {old.segment!r}, not {segment!r}",
                         "start a campaign with another name for another segment")
    if variants is not None and _check_arms(variants) != old.arms:
        raise UsageError(f"campaign {name!r} already has arms {dict(old.arms)}: sticky arms cannot change",
                         "leave --variants out on a rerun, or start a campaign with another name")
    if holdout is not None and abs(holdout - old.holdout_percent) > 1e-9:
        raise UsageError(f"campaign {name!r} already holds out {old.holdout_percent:g}%",
                         "leave --holdout out on a rerun")
    return replace(old, cost=old.cost if cost is None else cost, updated_run=run_id), False, gsalt


def start_campaign(ws: Workspace, name: str, *, segment: str, out_dir: Path, source: str | None = None,
                   variants: list[tuple[str, float]] | None = None, holdout: float | None = None,
                   global_control: float | None = None, cost: float | None = None,
                   start_date: date | None = None, fmt: str = "csv",
                   output: OutputOptions | None = None) -> StartResult:
    """Record (or refresh) campaign ``name`` on a segment's members and write its send and holdout lists
    (``output``: how they look as CSV, see :class:`crmtool.io.writers.OutputOptions`).

    Sticky: members already in the campaign keep their arm; newcomers are assigned by hash buckets
    (see :mod:`crmtool.campaigns.assign`). The send list holds the variant members whom the segment
    run allows to contact (status ``send``); the holdout list every holdout and global control member."""
    from crmtool.io.writers import write_query

    if fmt not in ("csv", "parquet"):
        raise UsageError(f"unknown output format {fmt!r}", "use csv or parquet")
    store.ensure_schema(ws.con)
    run = ws.start_run("campaign start")  # its metrics keep the step name 'campaign start'
    ws.con.begin()  # a failed start leaves no campaign, member or setting behind
    try:
        campaign, first, gsalt = _definition(ws, name, segment, run.run_id, variants, holdout, global_control,
                                             cost, start_date)
        source_run = assign.load_source(ws, segment, source)
        campaign = replace(campaign, source_run=source_run or campaign.source_run)
        store.save(ws.con, campaign)
        newcomers = assign.assign_newcomers(ws.con, campaign, run.run_id, gsalt)
        excluded = int(ws.con.execute(f"SELECT count(*) FROM {assign.SOURCE} WHERE status = 'excluded'")
                       .fetchall()[0][0])
        arms = dict(ws.con.execute("SELECT arm, count(*) FROM crm_campaign_members WHERE campaign = ? "
                                   "GROUP BY 1 ORDER BY 1", [name]).fetchall())
        send = dict(ws.con.execute(f"SELECT arm, count(*) FROM ({assign.send_query(campaign)}) GROUP BY 1 "
                                   "ORDER BY 1").fetchall())
        folder = out_dir / "campaigns" / name
        outputs = {"send": folder / f"send.{fmt}", "holdout": folder / f"holdout.{fmt}"}
        write_query(ws.con, assign.send_query(campaign), outputs["send"], fmt, options=output)
        write_query(ws.con, assign.holdout_query(campaign), outputs["holdout"], fmt, options=output)
        # the recorder registers the outputs in crm_outputs and the metrics in crm_metrics
        run.step.output("campaign_send", outputs["send"], sum(send.values()))
        run.step.output("campaign_holdout", outputs["holdout"],
                        arms.get(store.HOLDOUT, 0) + arms.get(store.GLOBAL_CONTROL, 0))
        if source_run is None and source is not None:
            run.step.input(assign.memberships_file(ws, Path(source)))
        for arm, n in arms.items():
            run.step.metric("campaign_members", n, f"{name}/{arm}")
        for arm, n in send.items():
            run.step.metric("campaign_send", n, f"{name}/{arm}")
        run.step.metric("campaign_newcomers", newcomers, name)
        result = StartResult(run.run_id, campaign, first, source_run or str(source), newcomers,
                             {str(k): int(v) for k, v in arms.items()}, {str(k): int(v) for k, v in send.items()},
                             excluded, outputs)
        ws.con.commit()
        ws.finish_run(run, str(result.status), 0, {"campaign": name, "newcomers": newcomers, "arms": result.arms})
        return result
    except BaseException as exc:
        ws.con.rollback()
        ws.finish_run(run, str(Status.ERROR), int(getattr(exc, "exit_code", 2)), {"error": type(exc).__name__})
        raise
    finally:
        ws.con.execute(f"DROP TABLE IF EXISTS {assign.SOURCE}")


def campaign_results(ws: Workspace, name: str, *, orders: Path, window_days: int, events: Path | None = None,
                     conversion_event: str | None = None, by: str | None = None, customers: Path | None = None,
                     segments_file: Path | None = None, start_date: date | None = None) -> CampaignResults:
    """Conversion, revenue and uplift against the holdout for every arm of ``name`` (see
    :mod:`crmtool.campaigns.results`); headline figures go to ``crm_metrics`` (step ``campaign``)."""
    from crmtool.segments.model import SegmentsSpec
    from crmtool.segments.spec import load_segments

    if window_days <= 0:
        raise UsageError("--window must be at least 1 day")
    if events is not None and not conversion_event:
        raise UsageError("--events needs --conversion-event TYPE (the event that counts as a conversion)")
    campaign = store.require(ws.con, name)
    spec = load_segments(segments_file) if segments_file else SegmentsSpec(file="(defaults)", segments=())
    start, end = window(start_date or campaign.start_date, window_days)
    run = ws.start_run("campaign results")
    run.step.name = STEP
    try:
        for path in (orders, events, customers, segments_file):
            if path is not None and path.is_file():
                run.step.input(path)
        inputs: dict[str, Any] = measure.order_totals(ws, orders, spec, start, end)
        if events is not None and conversion_event:
            inputs |= measure.event_conversions(ws, events, spec, conversion_event, start, end)
        dims = measure.breakdown_source(ws, by, customers, campaign.source_run, campaign.segment)
        totals = measure.arm_totals(ws.con, name, events is not None, dims)
        groups = [analyse(None, totals.get(None, {}), campaign.variant_names, campaign.cost)]
        groups += [analyse(v, totals[v], campaign.variant_names, campaign.cost)
                   for v in sorted(k for k in totals if k is not None)]
        conversion = "an order in the window" + (f" or a '{conversion_event}' event" if events else "")
        result = CampaignResults(run.run_id, campaign.as_dict(), start, end, conversion, by, groups, inputs)
        if groups[0].warnings:
            result.status = Status.WARN
        _record_metrics(run.step, name, groups[0])
        ws.finish_run(run, str(result.status), result.status.exit_code,
                      {"campaign": name, "warnings": len(result.warnings)})
        return result
    except Exception as exc:
        ws.finish_run(run, str(Status.ERROR), int(getattr(exc, "exit_code", 2)), {"error": type(exc).__name__})
        raise
    finally:
        measure.drop_inputs(ws.con)
        for t in ("cmp_orders", "cmp_events"):
            ws.con.execute(f"DROP TABLE IF EXISTS {t}")


def _record_metrics(step: Step, name: str, group: Group) -> None:
    """Headline results as metrics of the step (``campaign``), dimension ``<campaign>/<arm>``."""
    for a in group.arms:
        dim = f"{name}/{a.arm}"
        step.metric("customers", a.customers, dim)
        step.metric("conversion_rate", a.conversion_rate, dim)
        step.metric("revenue_per_customer", a.revenue_per_customer, dim)
    for c in group.comparisons:
        dim = f"{name}/{c.arm}"
        for metric, value in (("uplift", c.uplift), ("uplift_low", c.uplift_low), ("uplift_high", c.uplift_high),
                              ("p_value", c.p_value), ("incremental_revenue", c.incremental_revenue),
                              ("roi", c.roi)):
            step.metric(metric, value, dim)


@dataclass(frozen=True)
class PlanResult:
    baseline: float
    effect: float
    power: float
    alpha: float
    holdout_share: float
    holdout_customers: int
    treated_customers: int
    status: Status = Status.PASS

    @property
    def total(self) -> int:
        return self.holdout_customers + self.treated_customers

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__) | {"total_customers": self.total}


def plan(baseline: float, effect: float, *, power: float = 0.8, alpha: float = 0.05,
         holdout_share: float = 0.10) -> PlanResult:
    """How many holdout (and treated) customers detect an absolute uplift ``effect`` over ``baseline``."""
    if not 0 < holdout_share < 1:
        raise UsageError("--holdout must be between 0% and 100% (exclusive)")
    if not 0 < power < 1 or not 0 < alpha < 1:
        raise UsageError("--power and --alpha must be between 0 and 1")
    ratio = (1 - holdout_share) / holdout_share
    try:
        n0 = stats.holdout_size(baseline, effect, ratio=ratio, alpha=alpha, power=power)
    except ValueError as exc:
        raise UsageError(str(exc), "e.g. --baseline 3% --effect 0.5pp") from None
    return PlanResult(baseline, effect, power, alpha, holdout_share, n0, round(n0 * ratio))
