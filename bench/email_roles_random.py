"""Role accounts and random-looking local parts: how many are caught, how many real names are
flagged, on the shared email anchors and on a generated corpus.

    python bench/email_roles_random.py [--anchors /work/shared/email-anchors/labeled_emails.csv]

Run it with another checkout's code to compare (``PYTHONPATH=/path/to/other/src``); the corpus
is generated from a fixed seed, so both runs classify the same addresses. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import string
import sys
import unicodedata
from pathlib import Path

FIRST = ["antonio", "jose", "manuel", "francisco", "david", "juan", "javier", "daniel", "carlos", "jesus",
         "alejandro", "miguel", "rafael", "pablo", "sergio", "fernando", "jorge", "alberto", "luis", "alvaro",
         "maria", "carmen", "ana", "isabel", "laura", "cristina", "marta", "lucia", "francisca", "dolores",
         "paula", "elena", "raquel", "manuela", "sara", "rosa", "pilar", "concepcion", "mercedes", "beatriz",
         "inigo", "xabier", "jordi", "montserrat", "nuria", "aitor", "iker", "ainhoa", "begona", "txema",
         "joao", "goncalo", "mathieu", "francois", "giuseppe", "giovanni", "stefan", "jurgen", "wojciech", "krzysztof"]
LAST = ["garcia", "rodriguez", "gonzalez", "fernandez", "lopez", "martinez", "sanchez", "perez", "gomez",
        "martin", "jimenez", "ruiz", "hernandez", "diaz", "moreno", "munoz", "alvarez", "romero", "alonso",
        "gutierrez", "navarro", "torres", "dominguez", "vazquez", "ramos", "gil", "ramirez", "serrano", "blanco",
        "molina", "morales", "suarez", "ortega", "delgado", "castro", "ortiz", "rubio", "marin", "sanz", "iglesias",
        "etxeberria", "goikoetxea", "arrizabalaga", "puigdemont", "vilanova", "casals", "pujol", "fontcuberta",
        "schwarzkopf", "schmidt", "strzelczyk", "brzezinski", "oliveira", "goncalves", "rossi", "ferrari",
        "wojcik", "kowalczyk", "dzwonkowski", "mcgrath"]
DOMAINS = ["gmail.com", "hotmail.es", "yahoo.es", "telefonica.net", "empresa.es", "outlook.com"]
#: role inboxes of our users' languages, as companies write them (with the usual decorations)
ROLES = ["oficina", "ventas", "administracion", "pedidos", "contabilidad", "facturacion", "reservas", "info",
         "atencion.cliente", "rrhh", "compras", "recepcion", "secretaria", "gerencia", "presupuestos", "tienda",
         "vertrieb", "buchhaltung", "verwaltung", "bestellung", "kundendienst", "personalabteilung", "empfang",
         "comptabilite", "commandes", "accueil", "direction", "secretariat", "ventes", "facturation",
         "vendas", "encomendas", "financeiro", "atendimento", "comercial", "secretaria.geral",
         "amministrazione", "ordini", "vendite", "contabilita", "segreteria", "ufficio", "fatturazione",
         "sales", "office", "accounts", "orders", "info2", "Ventas-1", "pedidos.web"]
#: role inboxes with a qualifier after a separator (channel, scope, language, office)
ROLES_QUALIFIED = ["info-es", "ventas.online", "administracion_central", "contabilidad-madrid", "pedidos-tienda",
                   "reservas.hotel", "vertrieb-de", "accueil.paris", "info_pt", "comercial.norte"]


def role_with_names(rng: random.Random, n: int) -> list[str]:
    """A person at a department (ventas.maria@, info.garcia@): a role's name, a separator, a name.
    Not role inboxes; counted apart, since a name of three letters (ana, eva) reads as a qualifier."""
    heads = ["ventas", "info", "pedidos", "oficina", "comercial", "admin", "contabilidad", "rrhh"]
    return [f"{rng.choice(heads)}{rng.choice('._-')}{rng.choice(FIRST + LAST)}@{rng.choice(DOMAINS)}"
            for _ in range(n)]


def fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def real_names(rng: random.Random, n: int) -> list[str]:
    shapes = [
        lambda f, l1, l2: f"{f}.{l1}", lambda f, l1, l2: f"{f}{l1}", lambda f, l1, l2: f"{f[0]}{l1}",
        lambda f, l1, l2: f"{f}.{l1}.{l2}", lambda f, l1, l2: f"{f}{l1}{l2}", lambda f, l1, l2: f"{f[0]}{l1}{l2[0]}",
        lambda f, l1, l2: f"{f}_{l1}{rng.randint(1, 99)}", lambda f, l1, l2: f"{l1}{l2}",
        lambda f, l1, l2: f"{f}{rng.randint(1950, 2010)}", lambda f, l1, l2: f"{f[0]}{l1}{rng.randint(1, 999)}",
    ]
    out = []
    for _ in range(n):
        f, l1, l2 = rng.choice(FIRST), rng.choice(LAST), rng.choice(LAST)
        out.append(f"{rng.choice(shapes)(f, l1, l2)}@{rng.choice(DOMAINS)}")
    return out


def random_locals(rng: random.Random, n: int) -> list[str]:
    kinds = [
        lambda k: "".join(rng.choice(string.ascii_lowercase) for _ in range(k)),
        lambda k: "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(k)),
        lambda k: "".join(rng.choice("0123456789abcdef") for _ in range(k)),
        lambda k: "".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(k)),
    ]
    return [f"{rng.choice(kinds)(rng.randint(8, 16))}@{rng.choice(DOMAINS)}" for _ in range(n)]


def classify(emails: list[str]) -> dict[str, set[str]]:
    import duckdb
    import pyarrow as pa

    from crmtool.emails.classify import ClassifyOptions, classify_values
    from crmtool.emails.lists import EmailLists

    con = duckdb.connect()
    con.register("vals", pa.table({"value": pa.array(sorted(set(emails)), pa.string())}))
    con.execute("CREATE TABLE v AS SELECT * FROM vals")
    result = classify_values(con, "v", ClassifyOptions(lists=EmailLists.load()))
    found: dict[str, set[str]] = {"role": set(), "random_local": set()}
    for value, reasons in con.execute(f"SELECT value, reasons FROM {result.table}").fetchall():
        for r in reasons or []:
            name = r.split(":", 1)[0]
            if name in found:
                found[name].add(value)
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--anchors", type=Path, default=Path("/work/shared/email-anchors/labeled_emails.csv"))
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    rng = random.Random(20261201)
    names = real_names(rng, args.n)
    randoms = random_locals(rng, args.n // 3)
    roles = [f"{r}@{rng.choice(DOMAINS)}" for r in ROLES]
    # drawn after the original corpus, so the first three figures stay comparable with earlier runs
    qualified = [f"{r}@{rng.choice(DOMAINS)}" for r in ROLES_QUALIFIED]
    near_miss = role_with_names(rng, 300)
    anchors: dict[str, list[str]] = {}
    if args.anchors.exists():
        with args.anchors.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                anchors.setdefault(row["expected"], []).append(json.loads(row["email_json"]))
    everything = names + randoms + roles + qualified + near_miss + [e for v in anchors.values() for e in v]
    found = classify(everything)
    report = {
        "code": sys.modules["crmtool"].__file__,
        "corpus": {
            "real_names": len(set(names)),
            "real_names_flagged_role": len(set(names) & found["role"]),
            "real_names_flagged_random": len(set(names) & found["random_local"]),
            "random_locals": len(set(randoms)),
            "random_locals_caught": len(set(randoms) & found["random_local"]),
            "role_inboxes": len(set(roles)),
            "role_inboxes_caught": len(set(roles) & found["role"]),
            "role_inboxes_missed": sorted(r.split("@")[0] for r in set(roles) - found["role"]),
            "qualified_role_inboxes": len(set(qualified)),
            "qualified_role_inboxes_caught": len(set(qualified) & found["role"]),
            "role_dot_name": len(set(near_miss)),
            "role_dot_name_flagged_role": len(set(near_miss) & found["role"]),
            "role_dot_name_flagged_examples": sorted(r.split("@")[0] for r in set(near_miss) & found["role"])[:12],
        },
        "anchors": {
            label: {"rows": len(v), "role": len(set(v) & found["role"]),
                    "random_local": len(set(v) & found["random_local"])}
            for label, v in sorted(anchors.items())
        },
        "flagged_real_names_examples": sorted(set(names) & (found["random_local"] | found["role"]))[:15],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
