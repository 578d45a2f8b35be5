"""End to end on a generated export: duplicates, unsubscribes, bounces, erasure requests by each identifier.

After ``clean``, ``erase``, a second ``clean`` of the same export and a ``segment`` run, no written
byte (outputs, logs, the workspace file and its WAL, temp folders) holds an erased person's values
in any form, and nobody who must not be mailed is mailable or in a send list.
"""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

import duckdb
import pytest

from crmtool.identity.canonical import canonical_email, canonical_nif, canonical_phone

from .conftest import RULES, cli, workspace_containing

HEADER = ["customer_id", "first_name", "last_name", "email", "phone", "birth_date", "national_id", "postal_code",
          "city", "country", "signup_date", "last_order_date", "total_spent", "email_consent"]
FIRST = ["Lucía", "Martín", "Sofía", "Hugo", "Paula", "Daniel", "Carmen", "Jorge", "Elena", "Pablo", "Irene", "Raúl"]
LAST = ["García", "Sánchez", "Romero", "Navarro", "Torres", "Gil", "Ramos", "Blanco", "Molina", "Ortega", "Castro"]


def _nif(n: int) -> str:
    return f"{n:08d}" + "TRWAGMYFPDXBNJZSQVHLCKE"[n % 23]


def _person(cid: str, first: str, last: str, email: str, phone: str, birth: str, nif: str, consent: str = "Sí",
            postal: str = "28001") -> list[str]:
    return [cid, first, last, email, phone, birth, nif, postal, "Madrid", "ES", "2021-03-04", "2026-09-01", "120,50",
            consent]


# people the test follows (values chosen to be unique in the export)
ERASED = {
    # by customer id: two records of one person (dedupe cluster); the request names the first only
    "by_id": [_person("CZ9001", "Ximena", "Zubizarreta", "ximena.zubi@gmail.com", "611 22 33 44", "1980-02-03",
                      _nif(48291736)),
              _person("CZ9002", "Ximena", "Zubizarreta", "XimenaZubi+shop@googlemail.com", "+34 611223344",
                      "1980-02-03", _nif(48291736))],
    "by_email": [_person("CZ9003", "Bernardo", "Quenfield", "bernardo.quenfield@gmail.com", "622 10 20 30",
                         "1975-05-06", _nif(30561829))],
    "by_phone": [_person("CZ9004", "Olalla", "Vizcarrondo", "olalla.v@correo.es", "633 45 67 89", "1990-07-08",
                         _nif(71234508))],
    "by_nif": [_person("CZ9005", "Teodosio", "Arrizabalaga", "teo.arrizabalaga@correo.es", "644 98 76 54",
                       "1966-09-10", _nif(16783115))],
}
REQUESTS = [  # each identifier in another spelling than the export's
    ("REQ-ID", "CZ9001", "", "", ""),
    ("REQ-EMAIL", "", "BernardoQuenfield+x@GoogleMail.com", "", ""),
    ("REQ-PHONE", "", "", "0034633456789", ""),
    ("REQ-NIF", "", "", "", _nif(16783115)[:-1].lower() + "-" + _nif(16783115)[-1].lower()),
]
MUST_NOT_MAIL = {
    # unsubscribed on one record, in another spelling: both records of the person are out
    "unsub": [_person("CZ8001", "Anselmo", "Villarejo", "anselmo.villarejo@gmail.com", "655 11 22 33", "1982-01-02",
                      _nif(22334455)),
              _person("CZ8002", "Anselmo", "Villarejo", "anselmo.work@empresa.es", "655 11 22 33", "1982-01-02",
                      _nif(22334455))],
    # the bounce names the address as it was sent, with the typo the rules fix
    "bounced": [_person("CZ8003", "Casilda", "Montenegro", "casilda.montenegro@gmial.com", "666 33 44 55",
                        "1979-03-04", _nif(33445566))],
    # one record said yes, the other no: the person has not consented
    "consent": [_person("CZ8004", "Florencio", "Altamirano", "florencio.alta@correo.es", "677 44 55 66", "1988-04-05",
                        _nif(44556677), consent="Sí"),
                _person("CZ8005", "Florencio", "Altamirano", "florencio.alta@correo.es", "677 44 55 66",
                        "1988-04-05", _nif(44556677), consent="No")],
}


def _background(n: int) -> list[list[str]]:
    rnd = random.Random(7)
    rows = []
    for i in range(n):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        rows.append(_person(f"C{i + 1:07d}", first, last, f"{first.lower()[:3]}{i}@correo.es",
                            f"6{rnd.randrange(10**7, 10**8)}", f"19{rnd.randrange(50, 99)}-0{rnd.randrange(1, 9)}-1"
                            f"{rnd.randrange(0, 9)}", _nif(rnd.randrange(10**7, 10**8)),
                            consent=rnd.choice(["Sí", "Sí", "No", ""]), postal=f"{rnd.randrange(10000, 52999):05d}"))
    return rows


def _needles() -> list[str]:
    """Every form of every erased person's values: as given, canonical, E.164, national digits, cases.

    The ids are not hexadecimal (``CZ...``): the logs are full of hex hashes, where a short hex
    needle would be found by chance."""
    out: set[str] = set()
    for records in ERASED.values():
        for r in records:
            out |= {r[0], r[2]}  # id, unique surname
            email, phone, nif = r[3].strip(), r[4], r[6]
            out |= {email, str(canonical_email(email))}
            e164 = str(canonical_phone(phone))
            out |= {phone, e164, e164[3:], e164[1:]}
            out |= {nif, str(canonical_nif(nif))}
    for _ref, *values in REQUESTS:
        out |= {v for v in values if v}
    return sorted({n.lower() for n in out})


def _parquet_text(path: Path) -> str:
    """Every value of a Parquet file as text (its pages are compressed: the raw bytes hide them)."""
    con = duckdb.connect()
    try:
        rows = con.execute("SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    finally:
        con.close()
    return "\n".join("\t".join("" if v is None else str(v) for v in row) for row in rows)


def _scan(root: Path, needles: list[str], skip: set[Path]) -> dict[str, list[str]]:
    """Hits per file under ``root``: raw bytes (UTF-8 and cp1252), and the values of Parquet files
    (the audit log's change sets in ``<workspace>.audit/sets/``, Parquet outputs)."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.resolve() in skip:
            continue
        data = path.read_bytes()
        text = (data.decode("utf-8", errors="replace") + "\n" + data.decode("cp1252", errors="replace")).lower()
        if path.suffix == ".parquet":
            text += "\n" + _parquet_text(path).lower()
        hits = [n for n in needles if n in text]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


def _write(path: Path, rows: list[list[str]], header: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.mark.slow
def test_erased_people_leave_no_byte_and_must_not_mail_people_are_never_mailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    people = [r for group in (*ERASED.values(), *MUST_NOT_MAIL.values()) for r in group]
    export = _write(inputs / "clientes.csv", _background(300) + people, HEADER)
    unsub = _write(inputs / "bajas.csv", [["Anselmo.Villarejo+news@GoogleMail.com", "2026-05-01"]], ["email", "fecha"])
    bounces = _write(inputs / "bounces.csv", [["casilda.montenegro@gmial.com", "hard", "2026-06-01"]],
                     ["email", "type", "date"])
    requests = _write(inputs / "requests.csv", [list(r) for r in REQUESTS],
                      ["request_ref", "customer_id", "email", "phone", "national_id"])
    db = tmp_path / "crm.duckdb"
    w = ["-w", db]
    assert cli("suppress", "import", unsub, "-k", "unsubscribe", *w)[0] == 0
    code, out = cli("bounces", "import", bounces, "--format", "generic", *w)
    assert code == 0, out
    code, out = cli("clean", export, "--rules", RULES, "--out", tmp_path / "out", *w)
    assert code in (0, 1), out
    clusters = duckdb.connect(str(db), read_only=True)
    try:
        same = clusters.execute("SELECT count(DISTINCT cluster_id) FROM dedupe_records WHERE record_id IN "
                                "('CZ9001', 'CZ9002')").fetchall()[0][0]
    finally:
        clusters.close()
    assert same == 1, "the two records of the first erased person are one dedupe cluster"

    code, out = cli("erase", "--requests", requests, "--out", tmp_path / "out", *w)
    assert code == 0, out
    for ref in ("REQ-ID", "REQ-EMAIL", "REQ-PHONE", "REQ-NIF"):
        assert f"{ref}: erased" in out
    code, out = cli("erase", "--check", requests, "--out", tmp_path / "out", *w)
    assert code == 0 and "4/4 requests proven" in out, out

    code, out = cli("clean", export, "--rules", RULES, "--out", tmp_path / "out2", *w)
    assert code in (0, 1), out
    segments = inputs / "segments.yaml"
    segments.write_text("version: 1\ninputs:\n  customers: {id: customer_id, email: email, phone: phone, "
                        "consent: email_consent}\noutput: {columns: [customer_id, email, phone]}\n"
                        "segments:\n  - {name: everyone, when: 'TRUE'}\n", encoding="utf-8")
    code, out = cli("segment", "run", export, "--segments", segments, "--out", tmp_path / "seg",
                    "--as-of", "2026-11-01", *w)
    assert code == 0, out

    # 0 hits for any form of an erased person's values, in every byte written, the workspace's
    # audit log (chain and change sets) included
    audit = tmp_path / "crm.audit"
    sets = sorted((audit / "sets").glob("*.parquet"))
    assert (audit / "chain.jsonl").is_file() and sets, "the audit log is searched too"
    needles = _needles()
    skip = {p.resolve() for p in (export, requests)}  # the user's own inputs
    assert _scan(tmp_path, needles, skip) == {}
    assert workspace_containing(db, needles) == {}

    # 0 must-not-mail people mailable or in a send list
    blocked = {r[0] for group in MUST_NOT_MAIL.values() for r in group}
    for folder in ("out", "out2"):
        with (tmp_path / folder / "clientes.clean.csv").open(encoding="utf-8", newline="") as fh:
            rows = {r["customer_id"].strip(): r for r in csv.DictReader(fh)}
        assert all(rows[c]["mailable"] == "false" for c in blocked if c in rows), folder
        assert sum(r["mailable"] == "true" for r in rows.values()) > 50  # the others still can be
    sent = set()
    for send_list in (tmp_path / "seg" / "segments").glob("*.csv"):
        sent |= set(re.findall(r"C[0-9]{7}|CZ[0-9]{4}", send_list.read_text(encoding="utf-8")))
    assert sent and not (sent & blocked)
