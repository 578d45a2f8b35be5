"""Property: whatever the data, a send list never holds an unconsented, suppressed or erased customer."""

from __future__ import annotations

import csv

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmtool.normalise import normalise_email
from crmtool.segments import api
from crmtool.workspace import Workspace

GRANTED = {"yes", "Sí", "1", "true", "opt-in", " S "}  # the others below are no, unknown or blank
CONSENTS = ["yes", "Sí", "1", "true", "no", "0", "", "maybe", "N", "opt-in", "OPT-OUT", " S "]
customer = st.tuples(st.sampled_from(CONSENTS), st.sampled_from(["", "a@x.es", " B@X.es", "c@y.com", "d@y.com"]),
                     st.booleans(), st.booleans())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(customer, min_size=1, max_size=12), st.integers(0, 60))
def test_send_lists_respect_protection(kit, rows, holdout) -> None:  # type: ignore[no-untyped-def]
    ids = [f"C{i}" for i in range(len(rows))]
    path = kit.write_csv("p.csv", ["customer_id", "email", "phone", "consent", "signup"],
                         [[i, e, "", c, ""] for i, (c, e, _, _) in zip(ids, rows, strict=True)])
    body = (f"holdouts: {{global: {holdout}}}\n" if holdout else "") + \
        "segments: [{name: all, when: 'TRUE'}, {name: some, when: \"customer_id < 'C5'\"}]\n"
    with Workspace(":memory:") as ws:
        ws.hasher  # noqa: B018
        ws.con.execute("CREATE TABLE privacy_suppressions (channel VARCHAR, token VARCHAR, kind VARCHAR, "
                       "source VARCHAR, added_at TIMESTAMP)")
        ws.con.execute("CREATE TABLE privacy_erasures (token VARCHAR, identifier_type VARCHAR, request_ref VARCHAR, "
                       "requested_at TIMESTAMP, erased_at TIMESTAMP, run_id VARCHAR)")
        for i, (_, email, suppressed, erased) in zip(ids, rows, strict=True):
            if suppressed and email:
                ws.con.execute("INSERT INTO privacy_suppressions VALUES ('email', crm_token(?), 'unsubscribe', "
                               "'t', NULL)", [normalise_email(email)])
            if erased:
                ws.con.execute("INSERT INTO privacy_erasures VALUES (crm_token(?), 'customer_id', 'r', NULL, "
                               "NULL, 'x')", [i])
        suppressed_emails = {normalise_email(e) for (_, e, s, _) in rows if s and e}
        api.segment(ws, path, kit.spec(body), out_dir=kit.tmp / "o", as_of=kit.as_of)
    for name in ("all", "some"):
        with (kit.tmp / "o" / "segments" / f"{name}.csv").open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                consent, email, _, erased = rows[ids.index(row["customer_id"])]
                assert consent in GRANTED
                assert email.strip() and normalise_email(email) not in suppressed_emails
                assert not erased
