"""Exclusive groups, holdout labels, data protection and membership history (diff)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from crmtool.errors import UsageError
from crmtool.segments import api
from crmtool.segments.holdout import in_holdout

ORDERS = [["C1", "01/10/2026", "900,00", "web"], ["C1", "02/10/2026", "900,00", "web"],
          ["C2", "01/10/2026", "50,00", "web"], ["C3", "01/01/2025", "700,00", "web"]]


def test_exclusive_group_keeps_highest_priority_then_file_order(ws, kit) -> None:  # type: ignore[no-untyped-def]
    body = """
segments:
  - {name: big, when: {field: monetary_total, gte: 500}, exclusive: g, priority: 2}
  - {name: recent, when: {field: recency_days, lte: 60}, exclusive: g, priority: 1}
  - {name: buyers, when: {field: frequency, gte: 1}, exclusive: h}
  - {name: buyers2, when: {field: frequency, gte: 1}, exclusive: h}
  - {name: free, when: {field: frequency, gte: 1}}
"""
    r = kit.run(ws, body, kit.customers(["C1", "C2", "C3", "C4"]), ORDERS)
    by = {s.name: s for s in r.segments}
    assert kit.send_list("recent") == ["C1", "C2"]  # C1 matches big too, recent has priority 1
    assert kit.send_list("big") == ["C3"]
    assert (by["big"].matched, by["big"].members) == (2, 1)
    assert kit.send_list("buyers") == ["C1", "C2", "C3"] and kit.send_list("buyers2") == []  # tie: file order
    assert kit.send_list("free") == ["C1", "C2", "C3"]  # not in a group: unaffected


def test_holdout_labels_and_nesting(ws, kit) -> None:  # type: ignore[no-untyped-def]
    ids = [f"C{i:04d}" for i in range(400)]
    body = """
holdouts:
  salt: s1
  global: 5
  campaigns:
    promo: {percent: 20, segments: [b], salt: s2}
segments:
  - {name: a, when: 'TRUE', holdout: 10}
  - {name: b, when: 'TRUE'}
"""
    kit.run(ws, body, kit.customers(ids))
    rows = {(r["customer_id"], r["segment"]): r["holdout"] for r in kit.rows("out/holdouts.csv")}
    for i in ids:
        g = in_holdout(i, "s1", 5)
        assert rows.get((i, "a")) == ("global" if g else "segment" if in_holdout(i, "s1", 10) else None)
        assert rows.get((i, "b")) == ("global" if g else "campaign:promo" if in_holdout(i, "s2", 20) else None)
    sent_a = set(kit.send_list("a"))
    assert not sent_a & {i for (i, s) in rows if s == "a"}
    assert len(sent_a) + sum(1 for (_, s) in rows if s == "a") == len(ids)


def test_protection_reasons_and_counts(ws, kit) -> None:  # type: ignore[no-untyped-def]
    path = kit.write_csv("c.csv", ["customer_id", "email", "phone", "consent", "signup"], [
        ["C1", "ok@x.es", "600123456", "Sí", ""],
        ["C2", " Supp@X.es ", "", "yes", ""],  # suppressed by email (normalised before hashing)
        ["C3", "er@x.es", "", "1", ""],  # erased (by id)
        ["C4", "nc@x.es", "", "no", ""],
        ["C5", "unk@x.es", "", "maybe", ""],  # unknown consent is not consent
        ["C6", "", "", "true", ""],  # nothing to send to
        ["C7", "ph@x.es", "+34 611 22 33 44", "yes", ""],  # suppressed by phone
        ["C8", "hb@x.es", "", "yes", ""],  # hard bounce
    ])
    ws.hasher  # noqa: B018 - crm_token()
    ws.con.execute("CREATE TABLE privacy_suppressions (channel VARCHAR, token VARCHAR, kind VARCHAR, source VARCHAR, "
                   "added_at TIMESTAMP)")
    ws.con.execute("INSERT INTO privacy_suppressions VALUES "
                   "('email', crm_token('supp@x.es'), 'unsubscribe', 't', NULL),"
                   " ('phone', crm_token('+34611223344'), 'do_not_contact', 't', NULL)")
    ws.con.execute("CREATE TABLE privacy_erasures (token VARCHAR, identifier_type VARCHAR, request_ref VARCHAR, "
                   "requested_at TIMESTAMP, erased_at TIMESTAMP, run_id VARCHAR)")
    ws.con.execute("INSERT INTO privacy_erasures VALUES (crm_token('C3'), 'customer_id', 'r1', NULL, NULL, 'x')")
    ws.con.execute("CREATE TABLE email_bounces (token VARCHAR, domain VARCHAR, bounce_type VARCHAR, "
                   "occurred_at TIMESTAMP, platform VARCHAR, source VARCHAR, imported_run VARCHAR)")
    ws.con.execute("INSERT INTO email_bounces VALUES (crm_token('hb@x.es'), 'x.es', 'hard', NULL, 'p', 's', 'r')")
    r = kit.run(ws, "segments: [{name: all, when: 'TRUE'}]", path)
    assert kit.send_list("all") == ["C1"]
    assert r.excluded_customers == {"erased": 1, "suppressed": 2, "bounced": 1, "consent_denied": 1,
                                    "consent_unknown": 1, "no_email": 1}
    reasons = {m["customer_id"]: m["reason"] for m in kit.rows("out/memberships.csv")}
    assert reasons == {"C1": "", "C2": "suppressed", "C3": "erased", "C4": "consent_denied",
                       "C5": "consent_unknown", "C6": "no_email", "C7": "suppressed", "C8": "bounced"}
    assert r.notes == []


def test_single_record_people_get_the_person_paths_reasons(ws, kit) -> None:  # type: ignore[no-untyped-def]
    # without registers and dedupe clusters each customer is a person of one record (no person keys
    # are built); with an (empty) dedupe cluster table the person path runs: the same reasons and notes
    rows = [["C1", "ok@x.es", "", "Sí", ""], ["C2", " ", "", "yes", ""], ["C3", "a@x.es", "", "no", ""],
            ["C4", "b@x.es", "", "maybe", ""], ["C5", "c@x.es", "", "", ""], ["C6", "", "", "no", ""],
            [" C7 ", "d@x.es", "", " YES ", ""], ["C8", None, "", None, ""]]
    path = kit.write_csv("c.csv", ["customer_id", "email", "phone", "consent", "signup"], rows)
    spec = "segments: [{name: all, when: 'TRUE'}]"
    single = kit.run(ws, spec, path, out="single")
    ws.con.execute("CREATE TABLE dedupe_records (customer_id VARCHAR, cluster_id VARCHAR)")
    person = kit.run(ws, spec, path, out="person")
    assert kit.rows("single/memberships.csv") == kit.rows("person/memberships.csv")
    assert (single.excluded_customers, single.notes) == (person.excluded_customers, person.notes)
    assert single.excluded_customers == {"consent_denied": 1, "consent_unknown": 2, "no_email": 3}
    assert kit.send_list("all", out="single") == ["C1", "C7"]


def test_a_no_on_any_row_of_a_repeated_id_keeps_the_customer_off_send_lists(ws, kit) -> None:  # type: ignore[no-untyped-def]
    # the export repeats C1 and C3; segment keeps the first row of an id for its features, but consent
    # is the most restrictive of all the id's rows, with and without the person-key path
    rows = [["C1", "a@x.es", "", "yes", ""], ["C2", "b@x.es", "", "yes", ""], [" C1", "a@x.es", "", "no", ""],
            ["C3", "c@x.es", "", "yes", ""], ["C3", "c@x.es", "", "", ""]]
    path = kit.write_csv("c.csv", ["customer_id", "email", "phone", "consent", "signup"], rows)
    spec = "segments: [{name: all, when: 'TRUE'}]"
    single = kit.run(ws, spec, path, out="single")
    ws.con.execute("CREATE TABLE dedupe_records (customer_id VARCHAR, cluster_id VARCHAR)")
    person = kit.run(ws, spec, path, out="person")
    for result, out in ((single, "single"), (person, "person")):
        assert result.excluded_customers == {"consent_denied": 1, "consent_unknown": 1}
        assert kit.send_list("all", out=out) == ["C2"]


def test_history_diff_and_change_since_last_run(ws, kit) -> None:  # type: ignore[no-untyped-def]
    body = "segments:\n  - {name: buyers, when: {field: frequency, gte: 1}}\n  - {name: all, when: 'TRUE'}\n"
    customers = kit.customers(["C1", "C2", "C3", "C4"])
    with pytest.raises(UsageError, match="no segment runs"):
        api.diff(ws)
    first = kit.run(ws, body, customers, ORDERS[:2], as_of=date(2026, 10, 15), out="o1")
    assert first.previous_run is None and first.segments[0].entered is None
    second = kit.run(ws, body, customers, [*ORDERS[2:], ["C4", "03/11/2026", "5,00", "web"]],
                     as_of=date(2026, 11, 5), out="o2")
    assert second.previous_run == first.run_id
    buyers = second.segments[0]
    assert (buyers.previous, buyers.members, buyers.entered, buyers.exited) == (1, 3, 3, 1)
    d = api.diff(ws)
    assert (d.base_run, d.run) == (first.run_id, second.run_id)
    assert d.segments["buyers"] == {"before": 1, "after": 3, "entered": 3, "exited": 1}
    assert d.segments["all"] == {"before": 4, "after": 4, "entered": 0, "exited": 0}
    assert api.diff(ws, since="2026-10-31").base_run == first.run_id
    assert api.diff(ws, since=first.run_id).run == second.run_id
    api.write_diff(ws, d, kit.tmp / "diff.csv")
    assert kit.rows("diff.csv") == [
        {"segment": "buyers", "customer_id": "C2", "change": "entered"},
        {"segment": "buyers", "customer_id": "C3", "change": "entered"},
        {"segment": "buyers", "customer_id": "C4", "change": "entered"},
        {"segment": "buyers", "customer_id": "C1", "change": "exited"},
    ]
    with pytest.raises(UsageError, match="neither a run id nor a date"):
        api.diff(ws, since="last tuesday")


def test_outputs_are_byte_identical_on_rerun(ws, kit) -> None:  # type: ignore[no-untyped-def]
    body = ("holdouts: {global: 30}\n"
            "segments: [{name: all, when: 'TRUE'}, {name: b, when: {field: frequency, gte: 1}}]\n")
    customers = kit.customers([f"C{i}" for i in range(30)])
    kit.run(ws, body, customers, ORDERS, out="o1")
    kit.run(ws, body, customers, ORDERS, out="o2")
    for rel in ("segments/all.csv", "segments/b.csv", "holdouts.csv", "memberships.csv"):
        assert (kit.tmp / "o1" / rel).read_bytes() == (kit.tmp / "o2" / rel).read_bytes()


def test_parquet_inputs_and_outputs(ws, kit) -> None:  # type: ignore[no-untyped-def]
    import duckdb

    c = kit.tmp / "c.parquet"
    o = kit.tmp / "o.parquet"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT 'C' || i AS customer_id, 'c' || i || '@x.es' AS email, '' AS phone, 'yes' AS consent, "
                f"DATE '2026-01-01' AS signup FROM range(5) t(i)) TO '{c}' (FORMAT parquet)")
    con.execute(f"COPY (SELECT 'C' || (i % 3) AS customer_id, DATE '2026-10-01' + CAST(i AS INTEGER) AS order_date, "
                f"CAST(10.5 AS DECIMAL(10,2)) AS amount, 'web' AS channel FROM range(6) t(i)) "
                f"TO '{o}' (FORMAT parquet)")
    r = api.segment(ws, c, kit.spec("segments: [{name: b, when: {field: frequency, eq: 2}}]"),
                    out_dir=kit.tmp / "pq", orders=o, as_of=kit.as_of, fmt="parquet")
    assert r.segments[0].send == 3
    got = duckdb.connect().execute(f"SELECT customer_id FROM '{kit.tmp / 'pq/segments/b.parquet'}'").fetchall()
    assert got == [("C0",), ("C1",), ("C2",)]


def test_send_lists_carry_each_segments_own_columns(ws, kit) -> None:  # type: ignore[no-untyped-def]
    """Each send list keeps its own columns in its own order (a customer column named ``idx``
    included), only its members with status send, sorted by id, formulas neutralised."""
    path = kit.write_csv("c.csv", ["customer_id", "email", "phone", "consent", "signup", "idx"], [
        ["C2", "b@x.es", "", "yes", "", "=1+1"],
        ["C1", "a@x.es", "", "yes", "", "seven"],
        ["C3", "c@x.es", "", "no", "", "three"],
    ])
    body = """
segments:
  - {name: a, when: 'TRUE', columns: [idx, customer_id]}
  - {name: b, when: "customer_id <> 'C1'", columns: [customer_id, email]}
"""
    kit.run(ws, body, path)
    assert (kit.tmp / "out/segments/a.csv").read_text(encoding="utf-8") == "idx,customer_id\nseven,C1\n'=1+1,C2\n"
    assert (kit.tmp / "out/segments/b.csv").read_text(encoding="utf-8") == "customer_id,email\nC2,b@x.es\n"


def test_memberships_and_holdouts_are_in_segment_then_id_order_with_or_without_stored_order(
        ws, kit, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``seg_status`` is stored in (segment, id) order and the memberships/holdouts files are scans
    of it; where DuckDB may reorder a scan they are sorted instead, to the same bytes. Enough
    customers (shuffled in the file) for several vectors and threads."""
    import random

    from crmtool.segments import membership

    ids = [f"C{i:05d}" for i in range(6000)]
    random.Random(7).shuffle(ids)
    customers = kit.customers(ids)
    body = ("holdouts: {global: 10}\n"
            "segments: [{name: z, when: \"customer_id >= 'C03000'\"}, {name: a, when: 'TRUE', exclusive: g},"
            " {name: m, when: 'TRUE', exclusive: g, priority: 0}]\n")
    assert membership.stored_in_order(ws.con)
    kit.run(ws, body, customers, out="stored")
    rows = [(r["segment"], r["customer_id"]) for r in kit.rows("stored/memberships.csv")]
    order = {"z": 0, "a": 1, "m": 2}
    assert rows == sorted(rows, key=lambda r: (order[r[0]], r[1])) and len(rows) == 3000 + 6000
    held = [(r["segment"], r["customer_id"]) for r in kit.rows("stored/holdouts.csv")]
    assert held == sorted(held, key=lambda r: (order[r[0]], r[1])) and 0 < len(held) < len(rows)
    assert kit.send_list("z", "stored") == sorted(kit.send_list("z", "stored"))
    monkeypatch.setattr(membership, "stored_in_order", lambda con: False)
    kit.run(ws, body, customers, out="sorted")
    for rel in ("memberships.csv", "holdouts.csv", "segments/z.csv", "segments/m.csv"):
        assert (kit.tmp / "stored" / rel).read_bytes() == (kit.tmp / "sorted" / rel).read_bytes()


def test_manifest_and_step_digests_are_the_files_sha256(ws, kit) -> None:  # type: ignore[no-untyped-def]
    """The inputs are hashed once on a helper thread and each list as it is written: every digest in
    the manifest (and the step's inputs in it) is the SHA-256 of the file's bytes."""
    import hashlib
    import json

    body = "segments: [{name: all, when: 'TRUE'}, {name: b, when: {field: frequency, gte: 1}}]\n"
    kit.run(ws, body, kit.customers(["C1", "C2", "C3"]), ORDERS)
    manifest = json.loads((kit.tmp / "out" / "segments.manifest.json").read_text(encoding="utf-8"))
    entries = manifest["inputs"] + manifest["outputs"] + manifest["step"]["inputs"]
    assert {Path(e["path"]).name for e in manifest["step"]["inputs"]} == {"customers.csv", "orders.csv"}
    assert {Path(e["path"]).name for e in manifest["outputs"]} >= {"all.csv", "b.csv", "memberships.csv",
                                                                  "holdouts.csv", "segments.summary.json"}
    for e in entries:
        assert e["sha256"] == hashlib.sha256(Path(e["path"]).read_bytes()).hexdigest(), e["path"]
