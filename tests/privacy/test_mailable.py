"""Mailable flags never include a suppressed, unconsented, erased or hard-bounced person (property test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmtool.normalise import normalise_email
from crmtool.privacy.consent import normalise_consent
from crmtool.privacy.erase import erase
from crmtool.privacy.mailable import add_mailable_column, mailable_table
from crmtool.privacy.suppress import import_suppressions
from crmtool.workspace import Workspace

LOCALS = ["ana", "bob", "carla", "dani", "eva", "fran"]
SPELLINGS = ["{}@x.es", " {}@X.ES ", "{}@x.es ", "<{}@x.es>", "mailto:{}@x.es", "{}@x.es".upper()]
CONSENTS = ["Sí", "no", "S", "N", "1", "0", "yes", "", None, "opt-in", "x", "n/a", "true", "unsubscribed"]

person = st.tuples(st.sampled_from(LOCALS), st.sampled_from(SPELLINGS), st.sampled_from(CONSENTS))


def _email(local: str, spelling: str) -> str:
    return spelling.format(local) if "{}" in spelling else spelling.replace("{}", local)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    people=st.lists(person, min_size=1, max_size=12),
    unsubscribed=st.sets(st.sampled_from(LOCALS), max_size=3),
    erased=st.sets(st.sampled_from(LOCALS), max_size=2),
    suppressed_ids=st.sets(st.integers(1, 12), max_size=2),
)
def test_mailable_never_contains_a_forbidden_person(
    tmp_path_factory: pytest.TempPathFactory,
    people: list[tuple[str, str, str | None]],
    unsubscribed: set[str],
    erased: set[str],
    suppressed_ids: set[int],
) -> None:
    tmp = tmp_path_factory.mktemp("m")
    rows = [(i, f"C{i}", _email(local, sp), consent) for i, (local, sp, consent) in enumerate(people, start=1)]
    with Workspace(":memory:") as ws:
        ws.con.execute("CREATE TABLE clean_c (_row BIGINT, customer_id VARCHAR, email VARCHAR, consent VARCHAR)")
        ws.con.executemany("INSERT INTO clean_c VALUES (?, ?, ?, ?)", rows)
        if unsubscribed:
            (tmp / "bajas.csv").write_text(
                "email\n" + "\n".join(f"{u.upper()}@x.es" for u in unsubscribed) + "\n", encoding="utf-8"
            )
            import_suppressions(ws, tmp / "bajas.csv", "unsubscribe")
        if suppressed_ids:
            (tmp / "dnc.csv").write_text(
                "customer_id\n" + "\n".join(f"C{i}" for i in suppressed_ids) + "\n", encoding="utf-8"
            )
            import_suppressions(ws, tmp / "dnc.csv", "do_not_contact")
        if erased:
            (tmp / "req.csv").write_text("email\n" + "\n".join(f"{e}@x.es" for e in erased) + "\n", encoding="utf-8")
            erase(ws, tmp / "req.csv", out_dir=tmp / "out")
            # erased people come back in a new import: they must not be mailable either
            ws.con.executemany(
                "INSERT INTO clean_c VALUES (?, ?, ?, ?)",
                [(100 + i, f"N{i}", f"{e}@x.es", "yes") for i, e in enumerate(sorted(erased))],
            )
        summary = mailable_table(
            ws, "clean_c", email_column="email", consent_column="consent", key_column="customer_id"
        )
        flags = dict(ws.con.execute(f"SELECT _row, mailable FROM {summary.table}").fetchall())
        table = ws.con.execute("SELECT _row, customer_id, email, consent FROM clean_c").fetchall()
    for row, cid, email, consent in table:
        local = normalise_email(email).split("@")[0]
        allowed = (
            normalise_consent(consent) == "granted"
            and local not in unsubscribed
            and local not in erased
            and not (cid.startswith("C") and int(cid[1:]) in suppressed_ids)
        )
        assert bool(flags[row]) == allowed, (cid, email, consent)
    assert summary.mailable == sum(bool(v) for v in flags.values())


def test_reasons_and_hard_bounces(ws: Workspace, tmp_path: Path) -> None:
    ws.con.execute(
        "CREATE TABLE clean_c AS SELECT * FROM (VALUES (1, 'C1', 'a@x.es', 'yes'), (2, 'C2', 'b@x.es', 'yes'),"
        " (3, 'C3', 'c@x.es', 'no'), (4, 'C4', 'd@x.es', ''), (5, 'C5', NULL, 'yes'), (6, 'C6', 'e@x.es', 'si'))"
        " v(_row, customer_id, email, consent)"
    )
    ws.con.execute(
        "CREATE TABLE email_bounces (token VARCHAR, domain VARCHAR, bounce_type VARCHAR, "
        "occurred_at TIMESTAMP, platform VARCHAR, source VARCHAR, imported_run VARCHAR)"
    )
    ws.con.execute(
        "INSERT INTO email_bounces VALUES (?, 'x.es', 'hard', NULL, NULL, NULL, NULL), "
        "(?, 'x.es', 'soft', NULL, NULL, NULL, NULL)",
        [ws.hasher.token("b@x.es"), ws.hasher.token("e@x.es")],
    )
    summary = add_mailable_column(ws, "clean_c", email_column="email", consent_column="consent")
    assert summary.reasons == {
        "erased": 0,
        "suppressed": 0,
        "bounced": 1,
        "no_email": 1,
        "consent_denied": 1,
        "consent_unknown": 1,
    }
    assert ws.con.execute("SELECT customer_id FROM clean_c WHERE mailable ORDER BY 1").fetchall() == [("C1",), ("C6",)]


def test_without_consent_nobody_is_mailable(ws: Workspace) -> None:
    ws.con.execute("CREATE TABLE t AS SELECT 1 AS _row, 'a@x.es' AS email")
    summary = mailable_table(ws, "t", email_column="email")
    assert summary.mailable == 0 and summary.reasons["consent_unknown"] == 1


def test_mailable_for_ruleset_takes_everything_from_the_rules(ws: Workspace, tmp_path: Path) -> None:
    from crmtool.privacy.mailable import mailable_for_ruleset
    from crmtool.rulefile import load_rules

    rules = tmp_path / "r.yaml"
    rules.write_text(
        "version: 1\ndataset:\n  key: cid\nconsent:\n  email:\n    column: ok\n    granted: [vale]\n", encoding="utf-8"
    )
    ws.con.execute(
        "CREATE TABLE work_c AS SELECT * FROM (VALUES (1, 'C1', 'a@x.es', 'vale'), (2, 'C2', 'b@x.es', 'no'))"
        " v(_row, cid, correo, ok)"
    )
    summary = mailable_for_ruleset(ws, "work_c", load_rules(rules))
    assert summary is not None and summary.mailable == 1
    assert ws.con.execute(f"SELECT _row FROM {summary.table} WHERE mailable").fetchall() == [(1,)]
    ws.con.execute("CREATE TABLE t AS SELECT 1 AS _row, 'x' AS name")
    assert mailable_for_ruleset(ws, "t", load_rules(rules)) is None
