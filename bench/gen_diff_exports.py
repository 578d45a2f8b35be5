"""Generate two exports of the same customer base a day apart, for the ``diff`` benchmark.

    python bench/gen_diff_exports.py N OLD.csv NEW.csv [--seed S]

Both files have 15 columns. NEW is OLD after a realistic day: 1% of customers left, 1.5% new ones
joined (with higher ids), 4% had one to three fields edited (email, phone, city and postal code
together, consent flips, spend grows, last order date moves), 0.2% had an email changed only in
case or surrounding spaces, and NEW lists its columns in another order. Deterministic for a
seed; built in DuckDB SQL, so a million rows take a few seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

COLUMNS = ["customer_id", "first_name", "last_name", "email", "phone", "birth_date", "national_id",
           "postal_code", "city", "country", "signup_date", "last_order_date", "total_spent",
           "email_consent", "segment"]


def _base(seed: int) -> str:
    """One row per id: every value is a function of (id, seed), so OLD and NEW agree where unchanged."""
    h = f"hash(i, {seed}, '{{}}')"
    pick = "list_extract({lst}, 1 + (" + h + " % {n})::INT)"

    def choice(name: str, values: list[str]) -> str:
        lst = "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"
        return pick.format(name, lst=lst, n=len(values))

    first = choice("f", ["José", "María", "Antonio", "Carmen", "Ana", "Lucía", "David", "Laura", "Jordi", "Íñigo"])
    last = choice("l", ["García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Muñoz", "Álvarez"])
    city = choice("c", ["Madrid", "Barcelona", "València", "Sevilla", "Bilbao", "Málaga", "Zaragoza"])
    domain = choice("d", ["gmail.com", "hotmail.es", "yahoo.es", "outlook.es", "icloud.com", "empresa.es"])
    return f"""
        SELECT printf('C%08d', i) AS customer_id,
               {first} AS first_name, {last} AS last_name,
               lower(strip_accents({first})) || '.' || lower(strip_accents({last})) || (i % 9973)::VARCHAR
                   || '@' || {domain} AS email,
               '6' || lpad(({h.format('p')} % 100000000)::VARCHAR, 8, '0') AS phone,
               strftime(DATE '1950-01-01' + ({h.format('b')} % 20000)::INT, '%d/%m/%Y') AS birth_date,
               lpad(({h.format('n')} % 100000000)::VARCHAR, 8, '0') || 'TRWAGMYFPDXBNJZSQVHLCKE'[
                   1 + ({h.format('n')} % 100000000 % 23)::INT] AS national_id,
               lpad(({h.format('z')} % 52000 + 1000)::VARCHAR, 5, '0') AS postal_code,
               {city} AS city, 'ES' AS country,
               strftime(DATE '2015-01-01' + ({h.format('s')} % 3000)::INT, '%d/%m/%Y') AS signup_date,
               strftime(DATE '2023-01-01' + ({h.format('o')} % 1000)::INT, '%d/%m/%Y') AS last_order_date,
               replace(printf('%.2f', ({h.format('t')} % 500000) / 100.0), '.', ',') AS total_spent,
               CASE WHEN {h.format('e')} % 3 = 0 THEN 'no' ELSE 'sí' END AS email_consent,
               CASE WHEN {h.format('g')} % 4 = 0 THEN 'vip' ELSE 'regular' END AS segment"""


def generate(n: int, old: Path, new: Path, seed: int = 7) -> None:
    con = duckdb.connect()
    base = _base(seed)
    con.execute(f"CREATE TABLE old AS {base} FROM range(1, {n} + 1) t(i)")
    joined = int(n * 0.015)
    r = f"(hash(customer_id, {seed}, 'day') % 10000)"
    con.execute(f"""
        CREATE TABLE new AS
        SELECT customer_id, first_name, last_name,
               CASE WHEN {r} BETWEEN 100 AND 199 THEN replace(email, '@', '.new@')
                    WHEN {r} BETWEEN 400 AND 419 THEN ' ' || upper(email) ELSE email END AS email,
               CASE WHEN {r} BETWEEN 150 AND 249 THEN '7' || right(phone, 8) ELSE phone END AS phone,
               birth_date, national_id,
               CASE WHEN {r} BETWEEN 250 AND 299 THEN '28001' ELSE postal_code END AS postal_code,
               CASE WHEN {r} BETWEEN 250 AND 299 THEN 'Madrid' ELSE city END AS city,
               country, signup_date,
               CASE WHEN {r} BETWEEN 300 AND 499 THEN '01/12/2026' ELSE last_order_date END AS last_order_date,
               CASE WHEN {r} BETWEEN 300 AND 499 THEN replace(printf('%.2f',
                    replace(total_spent, ',', '.')::DOUBLE + 42.5), '.', ',') ELSE total_spent END AS total_spent,
               CASE WHEN {r} BETWEEN 350 AND 379 THEN (CASE email_consent WHEN 'no' THEN 'sí' ELSE 'no' END)
                    ELSE email_consent END AS email_consent,
               segment
        FROM old
        UNION ALL BY NAME
        SELECT * FROM ({base} FROM range({n} + 1, {n} + 1 + {joined}) t(i))""")
    con.execute(f"DELETE FROM new WHERE (hash(customer_id, {seed}, 'left') % 100) = 0 "
                f"AND customer_id <= printf('C%08d', {n})")
    order = ["email", *reversed(COLUMNS[10:]), *[c for c in COLUMNS[:10] if c != "email"]]
    for table, path, cols in (("old", old, COLUMNS), ("new", new, order)):
        path.parent.mkdir(parents=True, exist_ok=True)
        select = ", ".join(cols)
        con.execute(f"COPY (SELECT {select} FROM {table} ORDER BY customer_id) TO '{path}' (HEADER, DELIMITER ',')")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int)
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    generate(args.rows, args.old, args.new, args.seed)


if __name__ == "__main__":
    main()
