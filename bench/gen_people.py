"""Synthetic customer exports with known duplicates and look-alike *different* people (for dedupe benchmarks).

    python bench/gen_people.py --rows 1000000 --out /tmp/people_1m.parquet [--seed 7]

Writes the export (columns of examples/clientes.csv plus ``address``) and ``<out>.truth.parquet``
(customer_id, entity_id, household, twin, relation: 0 none, 1 spouse, 2 child, 3 twin, 4 same-name
neighbour; neighbour_of: the entity whose names and postcode a neighbour shares).
About 20% of rows are duplicates of another row's person, each carrying 1-4 real-world corruptions:
typos, accents stripped or upper case, nicknames (Paco/Francisco, Bill/William), first and last name
swapped, second surname dropped, email variants (case, gmail dots, another address), phone formats
(+34 / 0034 / spaces / dashes), birth date day/month swap or a one-digit typo, missing fields and a
moved address. Look-alikes that are *different* people: households (30% of persons, 2-4 people at one
address) with a spouse who has her or his own names, birth date and NIF, children carrying one surname
of each parent (10% named after a parent) and twins, sharing the address, usually a landline and, in
40% of couples, one email address; same-name neighbours (another person's names and postcode).
Seeded: the same arguments give the same files.
"""

from __future__ import annotations

# ruff: noqa: SIM905 - name lists read best as one string each
import argparse
import time
from pathlib import Path

import numpy as np

FIRST_ES = ("Antonio José Manuel Francisco David Juan Javier Daniel Carlos Jesús Alejandro Miguel Rafael "
            "Pablo "
            "Pedro Ángel Sergio Fernando Luis Jorge Alberto Álvaro Adrián Diego Raúl Enrique Ramón Vicente Ignacio "
            "Andrés Mario Óscar Rubén Iván Santiago Tomás Gonzalo Guillermo Eduardo Roberto Joaquín Marcos Hugo "
            "María Carmen Ana Isabel Laura Cristina Marta Lucía Elena Pilar Dolores Paula Sara Rosa Teresa Raquel "
            "Beatriz Patricia Mercedes Silvia Julia Nuria Irene Rocío Alba Andrea Sonia Eva Inmaculada Concepción "
            "Consuelo Alicia Claudia Natalia Verónica Susana Yolanda Lorena Noelia Montserrat Ainhoa "
            "Íñigo Nerea").split()
FIRST_INTL = ("William Robert James John Michael Thomas Elizabeth Margaret Katherine Jennifer Patrick Richard "
              "Pierre Nicolas Sébastien Frédéric Isabelle Catherine Jean Hans Johannes Friedrich Wilhelm Ursula "
              "Stefanie João Eduardo Fernanda Beatriz Gabriela Alexander Daniel Samuel Andrew").split()
SURNAMES_ES = ("García Rodríguez González Fernández López Martínez Sánchez Pérez Gómez Martín Jiménez Ruiz "
               "Hernández Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres Domínguez Vázquez Ramos "
               "Gil Ramírez Serrano Blanco Molina Morales Suárez Ortega Delgado Castro Ortiz Rubio Marín Sanz Núñez "
               "Iglesias Medina Garrido Cortés Castillo Santos Lozano Guerrero Cano Prieto Méndez Cruz Calvo "
               "Gallego Vidal León Márquez Herrera Peña Flores Cabrera Campos Vega Fuentes Carrasco Díez Caballero "
               "Reyes Nieto Aguilar Pascual Santana Herrero Lorenzo Montero Hidalgo Giménez Ibáñez Ferrer Durán "
               "Santiago Benítez Mora Vicente Vargas Arias Carmona Crespo Román Pastor Soto Sáez Velasco Moya "
               "Soler Parra Esteban Bravo Gallardo Rojas Pardo Merino Franco Espinosa Izquierdo Lara Rivas Silva "
               "Rivera Casado Arroyo Redondo Camacho Rey Vera Otero Luque Galán Montes Ríos Sierra Segura Carrillo "
               "Marcos Marí Soriano Mendoza Robles Bernal Vila Quintero Vallejo Pizarro Zapata Echeverría Urrutia "
               "Goikoetxea Aranburu Etxeberria Olabarria Zubizarreta Azcárate Larrañaga Mugica Ugarte "
               "Oyarzabal").split()
SURNAMES_INTL = ("Smith Johnson Williams Brown Jones Miller Davis Wilson Taylor Anderson Martin Bernard Dubois "
                 "Durand Lefebvre Moreau Laurent Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Silva "
                 "Santos Oliveira Souza Pereira Costa Ferreira Almeida Carvalho Rossi Russo Bianchi").split()
NICK = {"Francisco": "Paco", "José": "Pepe", "Manuel": "Manolo", "Ignacio": "Nacho", "Jesús": "Chus",
        "Dolores": "Lola", "Rafael": "Rafa", "Antonio": "Toni", "Enrique": "Quique", "Concepción": "Conchi",
        "Mercedes": "Merche", "Alejandro": "Alex", "Javier": "Javi", "Daniel": "Dani", "Guillermo": "Guille",
        "Fernando": "Nando", "Santiago": "Santi", "Eduardo": "Edu", "Beatriz": "Bea", "Cristina": "Cris",
        "Inmaculada": "Inma", "William": "Bill", "Robert": "Bob", "James": "Jim", "Michael": "Mike",
        "Thomas": "Tom", "Elizabeth": "Liz", "Margaret": "Peggy", "Katherine": "Kate", "Jennifer": "Jenny",
        "Patrick": "Pat", "Richard": "Dick", "Nicolas": "Nico", "Frédéric": "Fred", "Johannes": "Hans",
        "Wilhelm": "Willi", "Stefanie": "Steffi", "Samuel": "Sam", "Andrew": "Andy",
        "Alexander": "Alex"}
CITIES = ("Madrid 28 Barcelona 08 Valencia 46 Sevilla 41 Zaragoza 50 Málaga 29 Murcia 30 Palma 07 Bilbao 48 "
          "Alicante 03 Córdoba 14 Valladolid 47 Vigo 36 Gijón 33 Granada 18 Vitoria 01 Oviedo 33 Pamplona 31 "
          "Santander 39 Salamanca 37 Toledo 45 Burgos 09 León 24 Cádiz 11 Girona 17").split()
DOMAINS = ("gmail.com hotmail.com yahoo.es outlook.com icloud.com telefonica.net movistar.es gmail.com "
           "hotmail.es gmail.com").split()
DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _zipf_choice(rng: np.random.Generator, n_items: int, size: int, a: float = 1.1) -> np.ndarray:
    weights = 1.0 / np.arange(1, n_items + 1) ** a
    return rng.choice(n_items, size=size, p=weights / weights.sum())


def _strip(s: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def _typo(rng: np.random.Generator, s: str) -> str:
    if len(s) < 3:
        return s
    i = int(rng.integers(1, len(s) - 1))
    k = int(rng.integers(0, 3))
    if k == 0:
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    if k == 1:
        return s[:i] + s[i + 1:]
    return s[:i] + "aeiourslnt"[int(rng.integers(0, 10))] + s[i + 1:]


def generate(rows: int, seed: int = 7):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    n_ent = int(rows / 1.2)
    intl = rng.random(n_ent) < 0.15
    fi = _zipf_choice(rng, len(FIRST_ES), n_ent, 0.9)
    fx = rng.integers(0, len(FIRST_INTL), n_ent)
    first = np.where(intl, np.array(FIRST_INTL, dtype=object)[fx], np.array(FIRST_ES, dtype=object)[fi])
    s1 = _zipf_choice(rng, len(SURNAMES_ES), n_ent, 1.0)
    s2 = _zipf_choice(rng, len(SURNAMES_ES), n_ent, 1.0)
    sx = rng.integers(0, len(SURNAMES_INTL), n_ent)
    es = np.array(SURNAMES_ES, dtype=object)
    last = np.where(intl, np.array(SURNAMES_INTL, dtype=object)[sx], es[s1] + " " + es[s2])
    birth = np.datetime64("1940-01-01") + rng.integers(0, 365 * 65, n_ent).astype("timedelta64[D]")
    city_i = rng.integers(0, len(CITIES) // 2, n_ent)
    postal_n = rng.integers(0, 1000, n_ent)
    phone_n = 600_000_000 + rng.choice(100_000_000, size=n_ent, replace=False)
    dni_n = 10_000_000 + rng.choice(89_999_999, size=n_ent, replace=False)
    # households (~30% of persons, 2-4 people at one address): the head, a spouse with her or his own names,
    # birth date and NIF, and children carrying the head's first surname and the spouse's first surname,
    # born 20-40 years later (sometimes named after the parent; twins in 15% of households with two
    # children). They share the address, usually a landline and, in 40% of couples, one email address.
    streets = ("Calle Mayor", "Avenida de la Constitución", "Calle Real", "Plaza de España", "Calle Nueva",
               "Calle del Sol", "Paseo de Gracia", "Calle Alcalá", "Gran Vía", "Calle San Juan")
    street_i = rng.integers(0, len(streets), n_ent)
    number = rng.integers(1, 200, n_ent)
    floor = rng.integers(0, 9, n_ent)
    house = rng.random(n_ent) < 0.30
    idx_h = np.flatnonzero(house)
    rng.shuffle(idx_h)
    sizes = rng.integers(2, 5, len(idx_h))
    starts = np.concatenate([[0], np.cumsum(sizes)])
    head = np.arange(n_ent)
    landline = np.full(n_ent, -1, dtype=np.int64)
    shared_email = np.full(n_ent, -1, dtype=np.int64)
    twin = np.zeros(n_ent, dtype=bool)
    relation = np.zeros(n_ent, dtype=np.int8)  # 0 none/head, 1 spouse, 2 child, 3 twin, 4 same-name neighbour
    first_pool = np.array(FIRST_ES, dtype=object)
    for k in range(len(sizes)):  # over households (~90k at 1M rows), not rows
        members = idx_h[starts[k]:starts[k + 1]]
        if len(members) < 2:
            break
        h, sp = members[0], members[1]
        head[members] = h
        intl[members] = intl[h]
        for m in members[1:]:
            city_i[m], postal_n[m], street_i[m], number[m], floor[m] = (city_i[h], postal_n[h], street_i[h],
                                                                         number[h], floor[h])
        landline[members] = 900_000_000 + h % 100_000_000
        relation[sp] = 1
        birth[sp] = birth[h] + np.timedelta64(int(rng.integers(-8 * 365, 8 * 365)), "D")
        while first[sp] == first[h] or NICK.get(first[sp]) == first[h] or NICK.get(first[h]) == first[sp]:
            first[sp] = first_pool[int(rng.integers(0, len(first_pool)))]
        if rng.random() < 0.4:
            shared_email[[h, sp]] = h
        if intl[h]:
            last[sp] = last[h]  # many non-Spanish couples share one surname
        kids = members[2:]
        older = max(birth[h], birth[sp])
        for j, c in enumerate(kids):
            relation[c] = 2
            if not intl[h]:
                last[c] = f"{last[h].split(' ')[0]} {last[sp].split(' ')[0]}"
            else:
                last[c] = last[h]
            birth[c] = older + np.timedelta64(int(rng.integers(20 * 365, 40 * 365)), "D")
            if birth[c] > np.datetime64("2006-12-31"):  # customers are adults: born 1996-2006 instead
                birth[c] = np.datetime64("2006-12-31") - np.timedelta64(int(rng.integers(0, 3650)), "D")
            if j == 0 and rng.random() < 0.1:
                first[c] = first[h]  # named after a parent: Juan García López and his son Juan García Pérez
            elif j == 1 and rng.random() < 0.15:
                birth[c] = birth[kids[0]]  # twins: same surnames, birth date and address, their own names
                twin[c] = True
                relation[c] = 3
                while first[c] == first[kids[0]]:
                    first[c] = first_pool[int(rng.integers(0, len(first_pool)))]
    # same-name neighbours: 1% of persons get another person's first name, surnames and postal code
    nb = np.flatnonzero((rng.random(n_ent) < 0.01) & (relation == 0) & (head == np.arange(n_ent)))
    other = rng.integers(0, n_ent, len(nb))
    first[nb], last[nb], city_i[nb], postal_n[nb] = first[other], last[other], city_i[other], postal_n[other]
    relation[nb] = 4
    neighbour_of = np.full(n_ent, -1, dtype=np.int64)
    neighbour_of[nb] = other
    uses_landline = (landline > 0) & (rng.random(n_ent) < 0.5)
    phone_num = np.where(uses_landline, landline, phone_n)
    cities = np.array(CITIES[0::2], dtype=object)
    prov = np.array(CITIES[1::2], dtype=object)
    postal = [f"{prov[c]}{p:03d}" for c, p in zip(city_i, postal_n, strict=True)]
    address = [f"{streets[s]} {n}, {f}º" if f else f"{streets[s]} {n}"
               for s, n, f in zip(street_i, number, floor, strict=True)]
    dom = np.array(DOMAINS, dtype=object)[rng.integers(0, len(DOMAINS), n_ent)]
    email = [f"{_strip(f).lower()}.{_strip(s.split(' ')[0]).lower()}{i % 9973}@{d}"
             for i, (f, s, d) in enumerate(zip(first, last, dom, strict=True))]
    for i in np.flatnonzero(shared_email >= 0).tolist():  # the couple's one address: familia.<surname><n>@
        h = int(shared_email[i])
        email[i] = f"familia.{_strip(last[h].split(' ')[0]).lower()}{h % 9973}@{dom[h]}"
    # rows: every entity once, plus duplicates (1-3 extra copies) of ~16% of entities
    n_dup = rows - n_ent
    dup_of = rng.choice(n_ent, size=n_dup, replace=True, p=None)
    ent = np.concatenate([np.arange(n_ent), dup_of])
    is_dup = np.concatenate([np.zeros(n_ent, bool), np.ones(n_dup, bool)])
    order = rng.permutation(len(ent))
    ent, is_dup = ent[order], is_dup[order]
    out = {k: [] for k in ("customer_id", "first_name", "last_name", "email", "phone", "birth_date", "national_id",
                           "address", "postal_code", "city", "country", "signup_date", "last_order_date",
                           "email_consent")}
    ids = rng.permutation(len(ent)) + 1
    for row, (e, dup) in enumerate(zip(ent.tolist(), is_dup.tolist(), strict=True)):
        f, s, b = first[e], last[e], birth[e]
        em, ph, pc, ci, ad = email[e], str(phone_num[e]), postal[e], cities[city_i[e]], address[e]
        dni = f"{dni_n[e]}{DNI_LETTERS[dni_n[e] % 23]}"
        bd = str(b)
        bfmt = 0
        if dup:
            for c in rng.choice(14, size=int(rng.integers(1, 5)), replace=False).tolist():
                if c == 0:
                    f = _typo(rng, f)
                elif c == 1:
                    s = _typo(rng, s)
                elif c == 2:
                    f, s = _strip(f), _strip(s)
                elif c == 3:
                    f, s = f.upper(), s.upper()
                elif c == 4:
                    f = NICK.get(f, f)
                elif c == 5:
                    f, s = s, f
                elif c == 6:
                    s = s.split(" ")[0]
                elif c == 7:
                    r = rng.random()
                    em = em.upper() if r < 0.4 else ("" if r < 0.7 else f"{_strip(f).lower()}{row % 97}@gmail.com")
                elif c == 8:
                    r = int(rng.integers(0, 4))
                    ph = [f"+34 {ph[:3]} {ph[3:5]} {ph[5:7]} {ph[7:]}", f"0034{ph}", f"{ph[:3]}-{ph[3:6]}-{ph[6:]}",
                          ""][r]
                elif c == 9 and bd:
                    y, m, d = bd.split("-")
                    typo = f"{d[0]}{(int(d[1]) + int(rng.integers(1, 9))) % 10}"  # one digit of the day
                    typo = typo if "01" <= typo <= "28" else d
                    bd = f"{y}-{d}-{m}" if int(d) <= 12 and d != m and rng.random() < 0.5 else f"{y}-{m}-{typo}"
                elif c == 10:
                    dni = ""
                elif c == 11:
                    moved = int(rng.integers(0, n_ent))
                    pc, ci, ad = postal[moved], cities[city_i[moved]], address[moved]
                elif c == 12:
                    bd = ""
                else:
                    bfmt = 1
        y, m, d = bd.split("-") if bd else ("", "", "")
        out["customer_id"].append(f"C{ids[row]:07d}")
        out["first_name"].append(f)
        out["last_name"].append(s)
        out["email"].append(em or None)
        out["phone"].append(ph or None)
        out["birth_date"].append((f"{d}/{m}/{y}" if bfmt == 0 else bd) if bd else None)
        out["national_id"].append(dni or None)
        out["address"].append(ad)
        out["postal_code"].append(pc)
        out["city"].append(ci)
        out["country"].append("ES")
        day, month, year = int(rng.integers(1, 29)), int(rng.integers(1, 13)), int(rng.integers(10, 25))
        out["signup_date"].append(f"{day:02d}/{month:02d}/20{year}")
        out["last_order_date"].append(None)
        out["email_consent"].append(("sí", "no", "1", "0", "")[int(rng.integers(0, 5))])
    data = pa.table(out)
    truth = pa.table({"customer_id": out["customer_id"], "entity_id": pa.array(ent.astype(np.int64)),
                      "household": pa.array(head[ent].astype(np.int64)), "twin": pa.array(twin[ent]),
                      "relation": pa.array(relation[ent]),
                      "neighbour_of": pa.array(neighbour_of[ent])})
    return data, truth


def main() -> None:
    import pyarrow.parquet as pq

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/people.parquet"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    start = time.perf_counter()
    data, truth = generate(args.rows, args.seed)
    pq.write_table(data, args.out)
    pq.write_table(truth, args.out.with_suffix(".truth.parquet"))
    print(f"{data.num_rows} rows -> {args.out} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
