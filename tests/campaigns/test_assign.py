"""campaign start: arms from a segment run, sticky across reruns, the same global control everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmtool.campaigns import store
from crmtool.campaigns.api import start_campaign
from crmtool.errors import UsageError
from crmtool.io.readers import file_sha256
from crmtool.segments.holdout import in_holdout
from crmtool.workspace import Workspace

from .conftest import record_segment_run


def _arms(ws: Workspace, campaign: str) -> dict[str, str]:
    return dict(ws.con.execute("SELECT customer_id, arm FROM crm_campaign_members WHERE campaign = ?",
                               [campaign]).fetchall())


def test_arms_follow_the_buckets_and_the_segment_run(ws: Workspace, tmp_path: Path) -> None:
    status = {"C0000001": ("excluded", None), "C0000002": ("holdout", "global"),
              "C0000003": ("holdout", "segment"), "C0000004": ("holdout", "campaign:other")}
    record_segment_run(ws, "r1", "vip", range(1, 5001), status=status)
    res = start_campaign(ws, "spring", segment="vip", out_dir=tmp_path, variants=[("A", 0.3), ("B", 0.7)],
                         holdout=10, global_control=5)
    arms = _arms(ws, "spring")
    assert "C0000001" not in arms  # protections keep them out of the campaign entirely
    assert (arms["C0000002"], arms["C0000003"], arms["C0000004"]) == ("global_control", "holdout", "other_holdout")
    for cid, arm in arms.items():
        if cid in status:
            continue
        assert (arm == "global_control") == in_holdout(cid, store.GLOBAL_SALT, 5)
        if arm != "global_control":
            assert (arm == "holdout") == in_holdout(cid, "campaign:spring", 10)
    n = len(arms)
    assert res.arms == {a: list(arms.values()).count(a) for a in set(arms.values())}
    assert 0.03 < res.arms["global_control"] / n < 0.07
    assert 0.07 < res.arms["holdout"] / n < 0.13
    assert 0.25 < res.arms["A"] / (res.arms["A"] + res.arms["B"]) < 0.35
    assert res.excluded == 1 and res.newcomers == n == 4999


def test_send_and_holdout_lists_are_written_and_registered(ws: Workspace, tmp_path: Path) -> None:
    record_segment_run(ws, "r1", "vip", range(1, 801))
    res = start_campaign(ws, "spring", segment="vip", out_dir=tmp_path, holdout=20)
    send = res.outputs["send"].read_text().splitlines()
    hold = res.outputs["holdout"].read_text().splitlines()
    assert send[0] == hold[0] == "customer_id,arm"
    assert len(send) - 1 == res.send["send"] == res.arms["send"]
    assert len(hold) - 1 == res.arms["holdout"] + res.arms["global_control"]
    assert not set(send[1:]) & set(hold[1:])
    outs = {o.kind: o for o in ws.outputs(kinds=("campaign_send", "campaign_holdout"))}
    assert outs["campaign_send"].path == res.outputs["send"].resolve()
    assert outs["campaign_send"].sha256 == file_sha256(res.outputs["send"])
    assert outs["campaign_holdout"].rows == len(hold) - 1
    metrics = dict(ws.con.execute("SELECT name || ' ' || dimension, value FROM crm_metrics "
                                  "WHERE step = 'campaign start' AND run_id = ?", [res.run_id]).fetchall())
    assert metrics["campaign_members spring/holdout"] == res.arms["holdout"]
    assert metrics["campaign_send spring/send"] == len(send) - 1
    assert ws.con.execute("SELECT command, status FROM crm_runs WHERE run_id = ?", [res.run_id]).fetchall() == [
        ("campaign start", "pass")]


def test_rerun_keeps_arms_and_adds_newcomers(ws: Workspace, tmp_path: Path) -> None:
    record_segment_run(ws, "r1", "vip", range(1, 1001), day=1)
    start_campaign(ws, "spring", segment="vip", out_dir=tmp_path, variants=[("A", 0.5), ("B", 0.5)])
    before = _arms(ws, "spring")
    sent = [c for c, a in before.items() if a in ("A", "B")][:3]
    # next day: 200 newcomers, 100 customers left, and three variant members now held out by the
    # segment run (a new segment holdout): they keep their arm but leave the send list
    record_segment_run(ws, "r2", "vip", range(101, 1201), day=2,
                       status={c: ("holdout", "segment") for c in sent})
    res = start_campaign(ws, "spring", segment="vip", out_dir=tmp_path)
    after = _arms(ws, "spring")
    assert {c: after[c] for c in before} == before
    assert res.newcomers == len(after) - len(before) == 200
    send_ids = {line.split(",")[0] for line in res.outputs["send"].read_text().splitlines()[1:]}
    assert not set(sent) & send_ids
    assert "C0000001" not in send_ids  # left the segment: kept in the campaign, not sent again
    assert res.source == "r2" and not res.first_run


def test_rerun_cannot_change_arms_or_holdout(ws: Workspace, tmp_path: Path) -> None:
    record_segment_run(ws, "r1", "vip", range(1, 101))
    start_campaign(ws, "spring", segment="vip", out_dir=tmp_path, variants=[("A", 0.5), ("B", 0.5)], cost=100)
    with pytest.raises(UsageError, match="sticky arms cannot change"):
        start_campaign(ws, "spring", segment="vip", out_dir=tmp_path, variants=[("A", 0.2), ("B", 0.8)])
    with pytest.raises(UsageError, match="already holds out 10%"):
        start_campaign(ws, "spring", segment="vip", out_dir=tmp_path, holdout=20)
    with pytest.raises(UsageError, match="targets segment 'vip'"):
        start_campaign(ws, "spring", segment="other", out_dir=tmp_path)
    res = start_campaign(ws, "spring", segment="vip", out_dir=tmp_path, cost=250)
    assert res.campaign.cost == 250  # the cost may be known only later


def test_global_control_is_the_same_across_campaigns(ws: Workspace, tmp_path: Path) -> None:
    record_segment_run(ws, "r1", "vip", range(1, 3001))
    record_segment_run(ws, "r2", "lapsed", range(2001, 6001), day=2)
    start_campaign(ws, "spring", segment="vip", source="r1", out_dir=tmp_path, global_control=4)
    start_campaign(ws, "winback", segment="lapsed", source="r2", out_dir=tmp_path, holdout=30)
    a, b = _arms(ws, "spring"), _arms(ws, "winback")
    both = set(a) & set(b)
    assert len(both) == 1000
    assert {c for c in both if a[c] == "global_control"} == {c for c in both if b[c] == "global_control"}
    assert {c for c in b if b[c] == "global_control"} == {c for c in b if in_holdout(c, store.GLOBAL_SALT, 4)}
    with pytest.raises(UsageError, match="global control is 4%"):
        start_campaign(ws, "third", segment="vip", source="r1", out_dir=tmp_path, global_control=5)


def test_bad_variants_and_missing_sources(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no segment run"):
        start_campaign(ws, "x", segment="vip", out_dir=tmp_path)
    record_segment_run(ws, "r1", "vip", range(1, 11))
    with pytest.raises(UsageError, match="add up to 1"):
        start_campaign(ws, "x", segment="vip", out_dir=tmp_path, variants=[("A", 0.5), ("B", 0.6)])
    with pytest.raises(UsageError, match="distinct"):
        start_campaign(ws, "x", segment="vip", out_dir=tmp_path, variants=[("holdout", 1.0)])
    with pytest.raises(UsageError, match="neither a folder nor a segment run"):
        start_campaign(ws, "x", segment="vip", out_dir=tmp_path, source="nope")
    from crmtool.errors import InputError

    with pytest.raises(InputError, match="no members"):
        start_campaign(ws, "x", segment="nobody", out_dir=tmp_path)
    # failed starts leave nothing behind, not even the global control setting
    assert store.load(ws.con, "x") is None
    assert ws.con.execute("SELECT count(*) FROM crm_campaign_settings").fetchall() == [(0,)]
    assert ws.con.execute("SELECT DISTINCT status FROM crm_runs").fetchall() == [("error",)]
