"""Role accounts in our users' languages, and random-looking local parts (issue 16, item 8)."""

from __future__ import annotations

import duckdb
import pytest

from crmtool.emails.lists import EmailLists, builtin, role_key
from crmtool.emails.randomness import THRESHOLD, random_score_query

ROLES = ["oficina", "ventas", "administracion", "pedidos", "vertrieb", "buchhaltung", "comptabilite", "commandes",
         "vendas", "encomendas", "amministrazione", "ordini", "segreteria", "info", "postmaster"]
NAMES = ["maria.garcia", "jose.fernandez.lopez", "inigo.etxeberria", "p.schmidt", "wojciech.kowalczyk",
         "francisco.schwarzkopf", "albertodiazvazquez", "felixgarcia", "joaogoncalves", "anxo.vilanova",
         "txema.goikoetxea", "begona1985", "montserrat_casals", "gardner", "pastor", "mayor.jose", "alla"]


@pytest.mark.parametrize("local", ROLES)
def test_role_accounts_of_our_users_languages(local: str) -> None:
    roles = EmailLists.load().roles
    assert role_key(local) in roles
    assert role_key(local.capitalize() + ".2") in roles


def test_role_key_folds_accents_and_the_lists_leave_names_out() -> None:
    assert role_key("Administración.1") == "administracion"
    assert role_key("Comptabilité") == "comptabilite"
    roles = EmailLists.load().roles
    for name in ("alla", "gardner", "pastor", "mayor", "per", "user", "spam"):
        assert name not in roles, name
    # the shipped list and the user copy in rules/lists hold the same entries
    from pathlib import Path

    from crmtool.emails.lists import read_list

    user = read_list(Path(__file__).resolve().parents[2] / "rules" / "lists" / "role_accounts.txt")
    assert set(user) == set(builtin("role_accounts"))


def _scores(locals_: list[str]) -> dict[str, int]:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (local VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[x] for x in locals_])
    rows = con.execute(random_score_query("t", "local", "local")).fetchall()
    return {k: int(v) for k, v in rows}


def test_random_scores_catch_hashes_and_rare_pairs_not_names() -> None:
    randoms = ["15dbc7f1", "0099e1d10", "2a6349bc9f", "qwkjzvxq", "xk7qz9wv3p", "c4ca4238a0b923820dcc"]
    scores = _scores(randoms + NAMES)
    for local in randoms:
        assert scores.get(local, 0) >= THRESHOLD, (local, scores.get(local))
    for local in NAMES:
        assert scores.get(local, 0) < THRESHOLD, (local, scores.get(local))
    # numbers (a phone as the local part) and short parts are never random
    assert _scores(["600123456", "a1b2c3"]) == {} or max(_scores(["600123456", "a1b2c3"]).values()) < THRESHOLD
