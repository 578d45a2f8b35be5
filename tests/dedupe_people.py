"""Generated customer exports for the dedupe tests (shared by several test modules of tests/dedupe)."""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa

from crmtool.workspace import Workspace

FIRST = ["Xabier", "María", "José", "Lucía", "Javier", "Carmen"]
LAST = ["Díaz", "García", "López", "Pérez", "Ruiz", "Martín"]
FOLD = {"í": "i", "á": "a", "é": "e", "ó": "o", "ú": "u"}
COLS = ["customer_id", "first_name", "last_name", "email", "phone", "birth_date", "national_id", "postal_code",
        "city", "email_consent", "last_order_date"]
NIF_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def strangers(n: int, seed: int = 5) -> list[list[str]]:
    """``n`` different people: ~n/36 share each first name and surname, emails ``first.last<digits>@``,
    every identifier their own, one birth date in five missing."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = "".join(FOLD.get(ch, ch) for ch in f"{first}.{last}".lower()) + str(rng.randint(1, 9999))
        born = date(1940, 1, 1) + timedelta(days=rng.randint(0, 60 * 365))
        number = 10_000_000 + i * 7919
        postcode = rng.choice(["28001", "28002", "08001", "46001", "41001"])
        rows.append([
            f"C{i:05d}", first, last, f"{local}@{rng.choice(['gmail.com', 'hotmail.es', 'yahoo.es'])}",
            f"6{rng.randint(0, 99_999_999):08d}", "" if rng.random() < 0.2 else born.isoformat(),
            f"{number:08d}{NIF_LETTERS[number % 23]}", postcode,
            {"28": "Madrid", "08": "Barcelona", "46": "València", "41": "Sevilla"}[postcode[:2]],
            rng.choice(["sí", "no"]), "2024-01-01",
        ])
    return rows


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([COLS, *rows])
    return path


HH_FIRST = ["Antonio", "José", "Manuel", "Francisco", "David", "Juan", "Javier", "Carlos", "María", "Carmen", "Ana",
         "Isabel", "Laura", "Cristina", "Marta", "Lucía", "Elena", "Pilar", "Raúl", "Nuria", "Pablo", "Sergio"]
HH_LAST = ["García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Martín",
        "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez", "Romero", "Alonso", "Navarro"]
HH_COLS = ["customer_id", "nombre", "apellidos", "fecha_nacimiento", "correo", "telefono", "nif", "codigo_postal",
        "ciudad", "email_consent"]


def generate(people: int = 400, seed: int = 5) -> tuple[list[list[str]], list[tuple[str, str]], list[tuple[str, str]]]:
    """Rows (Spanish column names), planted duplicate pairs and spouse pairs (different people, one home)."""
    rnd = random.Random(seed)
    rows, dups, spouses = [], [], []
    for i in range(people):
        first, last = rnd.choice(HH_FIRST), f"{rnd.choice(HH_LAST)} {rnd.choice(HH_LAST)}"
        dob = f"{rnd.randint(1, 28):02d}/{rnd.randint(1, 12):02d}/{rnd.randint(1940, 2000)}"
        nif = 10_000_000 + i * 7919
        row = [f"C{i:05d}", first, last, dob, f"{first.lower()}.{i}@example.com", f"6{i:08d}",
               f"{nif}{'TRWAGMYFPDXBNJZSQVHLCKE'[nif % 23]}", f"{28000 + i % 97:05d}", "Madrid", "sí"]
        rows.append(row)
        if i % 5 == 0:  # a duplicate: upper case, the phone formatted, the email missing
            dup = list(row)
            dup[0], dup[1], dup[2], dup[4] = f"D{i:05d}", first.upper(), last.upper(), ""
            dup[5] = f"+34 {row[5][:3]} {row[5][3:6]} {row[5][6:]}"
            rows.append(dup)
            dups.append((row[0], dup[0]))
        elif i % 7 == 0:  # a spouse: her own names, birth date and NIF; the couple's email and landline
            s_first = next(f for f in HH_FIRST if f != first and f[0] != first[0])
            s_nif = 50_000_000 + i
            home = [f"{row[1].lower()}.familia@example.com", f"91{i:07d}"]
            row[4], row[5] = home
            rows.append([f"S{i:05d}", s_first, f"{rnd.choice(HH_LAST)} {rnd.choice(HH_LAST)}",
                         f"{rnd.randint(1, 28):02d}/{rnd.randint(1, 12):02d}/{rnd.randint(1940, 2000)}", *home,
                         f"{s_nif}{'TRWAGMYFPDXBNJZSQVHLCKE'[s_nif % 23]}", row[7], row[8], "no"])
            spouses.append((row[0], f"S{i:05d}"))
    return rows, dups, spouses


def load_people(ws: Workspace, rows: list[list[str]]) -> str:
    ws.con.register("__t", pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(HH_COLS)}))
    ws.con.execute("CREATE OR REPLACE TABLE people AS SELECT * FROM __t")
    ws.con.unregister("__t")
    return "people"
