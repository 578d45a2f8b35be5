"""Classifier units: lists, scores, risk, tags, and free-text robustness."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmtool.emails.classify import WEIGHTS, ClassifyOptions, classify_list
from crmtool.emails.lists import EmailLists, role_key
from crmtool.emails.randomness import THRESHOLD, random_score_query
from crmtool.emails.typos import TypoDetector


def classify(values: list[str], options: ClassifyOptions | None = None) -> dict[str, dict]:  # type: ignore[type-arg]
    return classify_list(duckdb.connect(), values, options)


def scores(locals_: list[str]) -> dict[str, int]:
    con = duckdb.connect()
    con.execute("CREATE TABLE l (v VARCHAR)")
    con.executemany("INSERT INTO l VALUES (?)", [[v] for v in locals_])
    scored = dict(con.execute(random_score_query("l", "v", "v")).fetchall())
    return {v: scored.get(v, 0) for v in locals_}


NAMES = ["maria.fernandez", "jose.garcia.lopez", "p.schmidt", "schwarzkopf", "krzysztof.wojciechowski",
         "borchgrevink", "jsmith1985", "anamaria1984", "christopher", "throckmorton", "jschneider",
         "ljubljana.mrkvc", "nguyen.thanh", "xiaoming.zhang", "oyelaran.adebayo", "user12345", "b.strzelczyk"]


def test_ordinary_names_are_not_random() -> None:
    got = scores(NAMES)
    assert all(v < THRESHOLD for v in got.values()), got


def test_random_strings_are() -> None:
    got = scores(["xk7qz9wv3p", "hfjdkslapq", "ngt4k2p9x", "q7w2x9z4k8", "zxcvbnmlkj"])
    assert all(v >= THRESHOLD for v in got.values()), got
    assert scores(["xk7q"]) == {"xk7q": 0}  # too short to judge


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text("abcdefghijklmnopqrstuvwxyz0123456789._-aeiou", min_size=1, max_size=30), min_size=1,
                max_size=50))
def test_the_gate_never_hides_a_random_part(locals_: list[str]) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE l AS SELECT unnest(CAST(? AS VARCHAR[])) AS v", [locals_])
    full = dict(con.execute(random_score_query("l", "v", "v", gated=False)).fetchall())
    gated = dict(con.execute(random_score_query("l", "v", "v")).fetchall())
    for v, score in full.items():
        if score >= THRESHOLD:
            assert gated.get(v) == score, v


def test_role_key() -> None:
    assert role_key("Info.2") == "info" and role_key("no-reply") == "noreply" and role_key("ventas+x") == "ventas"


def test_user_lists(tmp_path: Path) -> None:
    folder = tmp_path / "lists"
    folder.mkdir()
    (folder / "role_accounts.txt").write_text("# only this\nrecepcion\n", encoding="utf-8")
    (folder / "disposable_extra.txt").write_text("tirar.es\n", encoding="utf-8")
    (folder / "allow_domains.txt").write_text("gmaill.com  # our partner\n", encoding="utf-8")
    opts = ClassifyOptions(lists=EmailLists.load(folder))
    got = classify(["info@acme.es", "recepcion@acme.es", "a@x.tirar.es", "a@gmaill.com"], opts)
    assert got["info@acme.es"]["reasons"] == []  # the user's role list replaces the built-in one
    assert got["recepcion@acme.es"]["reasons"] == ["role"]
    assert got["a@x.tirar.es"]["reasons"] == ["disposable"]  # subdomain of a listed domain
    assert got["a@gmaill.com"]["reasons"] == [] and got["a@gmaill.com"]["tags"] == ["corporate"]


def test_risk_is_a_noisy_or_of_the_weights() -> None:
    got = classify(["info@gmial.com", "info@acme.es", "ana@acme.es"])
    w = WEIGHTS
    keep = (1 - w["disposable"] / 100) * (1 - w["typo_domain"] / 100) * (1 - w["role"] / 100)
    expected = math.floor(100 * (1 - keep) + 0.5)  # SQL round(): half away from zero
    assert got["info@gmial.com"]["risk"] == expected
    assert got["info@acme.es"]["risk"] == w["role"] and got["ana@acme.es"]["risk"] == 0


def test_tags() -> None:
    got = classify(["a@gmail.com", "a@acme.es", "a@mailinator.com", "bad"])
    assert got["a@gmail.com"]["tags"] == ["free_provider"] and got["a@acme.es"]["tags"] == ["corporate"]
    assert got["a@mailinator.com"]["tags"] == [] and got["bad"]["tags"] == []


@pytest.mark.parametrize(("domain", "expected"), [("gmial.com", "gmail.com"), ("hotmial.com", "hotmail.com"),
                                                  ("yopmail.com", None), ("mail.com", None), ("email.com", None),
                                                  ("empresa.zr", None), ("outlook.de", None)])
def test_typo_detector(domain: str, expected: str | None) -> None:
    from crmtool.emails.lists import builtin

    lists = EmailLists.load()
    assert TypoDetector(lists.providers, builtin("allow")).suggest(domain) == expected


CON = duckdb.connect()
LISTS = ClassifyOptions(lists=EmailLists.load())


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=80), min_size=1, max_size=30))
def test_any_text_gets_a_classification(values: list[str]) -> None:
    values = [v for v in values if v]
    if not values:
        return
    got = classify_list(CON, values, LISTS)
    assert set(got) == set(values)
    for row in got.values():
        assert row["status"] in ("valid", "invalid", "risky", "unknown")
        assert 0 <= row["risk"] <= 100


def test_hostile_strings() -> None:
    values = ["x" * 10240 + "@acme.es", "a\x00@acme.es", "\x1b[31m@acme.es", "ana@acme.es\n", "\ud7ff@acme.es",
              "ana@" + "a." * 200 + "es", "Ã±ana@acme.es", "ana@acme.es;luis@acme.es"]
    got = classify(values)
    assert all(got[v]["status"] == "invalid" for v in values if v != "\ud7ff@acme.es" and v != "Ã±ana@acme.es")
    assert got["x" * 10240 + "@acme.es"]["reasons"] == ["syntax:too_long"]


def test_slow_addresses_classified_in_small_batches_give_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    import crmtool.db as db

    values = [f"José.{i}@correo.es" if i % 4 else f"<ana{i}@gmial.com>" for i in range(30)]
    values += ["no-at-sign", " pad@x.es ", "ok.fast@gmail.com", "a@b@c.es", "Ana Ruiz <ana@x.es>"]
    whole = classify(values)
    monkeypatch.setattr(db, "MAP_BATCH", 4)
    assert classify(values) == whole
    assert {whole[v]["status"] for v in values} >= {"valid", "invalid"}
