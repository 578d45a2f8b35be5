"""A ``dedupe:`` section written from the profile of a loaded table: defaults that work untuned.

:func:`suggest_dedupe_section` reads column names (:mod:`crmtool.dedupe.roles`) and contents (share of
values that look like an email, a phone number, a date; distinct values) to decide which columns are
the record id, names, birth date, contact and home columns; it compares each by the method made for it,
puts email, phone and address columns in the household group, and tries a fixed list of blocking rules
on the data itself, keeping those whose pair count stays within a budget (``PAIRS_PER_ROW`` times the
rows per rule, ``TOTAL_PAIRS_PER_ROW`` in all, at least ``MIN_BUDGET``). ``crmtool dedupe FILE
--suggest`` prints it as YAML and ``crmtool init`` writes it; the shipped ``rules/30-dedupe.yaml`` is
its output on the example columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmtool.dedupe.roles import HOME_ROLES, role_of
from crmtool.errors import InputError
from crmtool.sqltext import ident

if TYPE_CHECKING:
    import duckdb

#: a blocking rule may make at most this many candidate pairs per row (budget, on the data's own counts)
PAIRS_PER_ROW = 2
TOTAL_PAIRS_PER_ROW = 5
MIN_BUDGET = 20_000
#: rows profiled and tried: larger tables are sampled (pair counts scaled by the square of the ratio)
SAMPLE_ROWS = 50_000
#: (role, method, thresholds or None, extra keys)
METHOD_OF: dict[str, tuple[str, list[float] | None]] = {
    "first_name": ("name", None),
    "last_name": ("surname", None),
    "full_name": ("token_set", [0.6]),
    "birth_date": ("date", None),
    "email": ("email", None),
    "phone": ("phone", None),
    "national_id": ("levenshtein", [1, 2]),
    "address": ("jaro_winkler", [0.9, 0.8]),
    "street_number": ("levenshtein", [1]),
    "postal_code": ("levenshtein", [1]),
    "city": ("jaro_winkler", [0.9]),
    "region": ("exact", None),
}
ROLE_ORDER = tuple(METHOD_OF)


def _profile(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, list[dict[str, Any]]]:
    """Rows of ``table`` and, per column, values present, distinct values and the shares of values that
    look like an email, a phone number and a date (one scan for all columns)."""
    from crmtool.dedupe.prepare import feature_sql

    cols = [r[0] for r in con.execute(f"DESCRIBE {ident(table)}").fetchall() if r[0] != "_row"]
    items = ["count(*)"]
    for c in cols:
        v = f"nullif(trim(CAST({ident(c)} AS VARCHAR)), '')"
        date = feature_sql(v, "date", ("%d/%m/%Y", "%Y%m%d", "%d-%m-%Y", "%d.%m.%Y"))
        items += [f"count({v})", f"approx_count_distinct({v})", f"count(*) FILTER (WHERE {v} LIKE '%_@_%._%')",
                  f"count(*) FILTER (WHERE regexp_full_match({v}, '[+0-9 ().-]{{6,20}}') "
                  f"AND length(regexp_replace({v}, '[^0-9]', '', 'g')) BETWEEN 6 AND 15)",
                  f"count(*) FILTER (WHERE ({date}) IS NOT NULL)"]
    row = con.execute(f"SELECT {', '.join(items)} FROM {ident(table)}").fetchall()[0]
    rows = int(row[0])
    out = []
    for k, c in enumerate(cols):
        present, distinct, at, phone, dates = (int(x) for x in row[1 + 5 * k: 6 + 5 * k])
        n = max(present, 1)
        out.append({"column": c, "present": present, "distinct": distinct, "email": at / n, "phone": phone / n,
                    "date": dates / n, "role": role_of(c)})
    # exact distinct counts where they decide the record id (approximate counts are off by a few %)
    for p in out:
        if p["present"] == rows and p["distinct"] >= 0.9 * rows:
            v = f"nullif(trim(CAST({ident(p['column'])} AS VARCHAR)), '')"
            p["distinct"] = int(con.execute(f"SELECT count(DISTINCT {v}) FROM {ident(table)}").fetchall()[0][0])
    return rows, out


def _roles(rows: int, profile: list[dict[str, Any]]) -> tuple[str, dict[str, list[str]]]:
    """(id column, role -> columns), names confirmed by contents where contents can tell."""
    ids = [p["column"] for p in profile if p["distinct"] == rows and p["present"] == rows]
    # a column named as an id that repeats a few values is still the id (clean rejects the repeats first)
    named_id = [p["column"] for p in profile if p["role"] == "id" and p["distinct"] >= 0.95 * rows]
    if not ids and not named_id:
        raise InputError("suggest: no column has a unique value on every row, so there is no record id",
                         "add a record id column (unique per row) to the export")
    id_column = (named_id or [c for c in ids if "id" in c.lower()] or ids)[0]
    roles: dict[str, list[str]] = {}
    for p in profile:
        role = p["role"]
        if p["column"] == id_column or p["present"] == 0:
            continue
        if role is None and p["email"] > 0.8:
            role = "email"
        if (role == "email" and p["email"] < 0.3) or (role == "phone" and p["phone"] < 0.3):
            continue  # the name says so, the contents do not
        if role == "birth_date" and p["date"] < 0.3:
            continue
        if role in METHOD_OF:
            roles.setdefault(role, []).append(p["column"])
    return id_column, roles


def _candidate_blocking(roles: dict[str, list[str]]) -> list[dict[str, Any]]:
    def one(role: str) -> str | None:
        found = roles.get(role)
        return found[0] if found else None

    first, last, birth = one("first_name"), one("last_name"), one("birth_date")
    postal, number, address = one("postal_code"), one("street_number"), one("address")
    cands: list[tuple[str, list[str | None], list[str]]] = [
        ("email", [one("email")], ["email"]),
        ("phone", [one("phone")], ["phone"]),
        ("national_id", [one("national_id")], ["text"]),
        ("surname_birth", [last, first, birth], ["phonetic", "initial", "date"]),
        ("name_birth", [first, last, birth], ["nickname", "initial", "date"]),
        ("surname_postcode", [last, first, postal], ["phonetic", "initial", "text"]),
        ("birth_postcode", [birth, postal], ["date", "text"]),  # names swapped or both misspelt
        ("given_birth", [first, birth], ["phonetic", "date"]),
        ("street", [address, number], ["text", "text"]),
        ("postcode_number", [postal, number], ["text", "text"]),
        ("names", [first, last], ["prefix3", "prefix3"]),
        ("full_name", [one("full_name")], ["text"]),
        ("birth", [birth], ["date"]),
    ]
    out = []
    for name, cols, transforms in cands:
        if all(cols):
            out.append({"name": name, "on": [f"{c}:{t}" for c, t in zip(cols, transforms, strict=True)]})
    return out


def _comparisons(roles: dict[str, list[str]]) -> list[dict[str, Any]]:
    first = roles["first_name"][0] if roles.get("first_name") else None
    last = roles["last_name"][0] if roles.get("last_name") else None
    out = []
    for role in ROLE_ORDER:
        for col in roles.get(role, []):
            method, thresholds = METHOD_OF[role]
            item: dict[str, Any] = {"column": col, "method": method}
            if thresholds:
                item["thresholds"] = thresholds
            if role == "first_name" and last:
                item["swap_with"] = last
            if role == "last_name":
                if first:
                    item["swap_with"] = first
                item["term_frequency"] = True
            out.append(item)
    return out


def _pair_counts(con: duckdb.DuckDBPyConnection, table: str, section: dict[str, Any], scale: float) -> list[int]:
    """Candidate pairs each blocking rule of ``section`` makes on ``table`` (blocks above the size cap skipped)."""
    import yaml

    from crmtool.dedupe.prepare import prepare
    from crmtool.dedupe.spec import spec_from_text

    spec = spec_from_text(yaml.safe_dump({"dedupe": section}, sort_keys=False), "<suggest>")
    prep = prepare(con, table, spec, "__dd_suggest_prep")
    counts = []
    for key in prep.block_keys:
        n = con.execute(f"""SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM (SELECT count(*) AS n
            FROM __dd_suggest_prep WHERE {key} IS NOT NULL GROUP BY {key})
            WHERE n <= {spec.max_block_size}""").fetchall()
        counts.append(int(n[0][0] * scale))
    con.execute("DROP TABLE IF EXISTS __dd_suggest_prep")
    return counts


def suggest_dedupe_section(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, Any]:
    """A YAML-ready ``dedupe:`` section (the mapping under the key) for ``table`` of ``con``."""
    rows = int(con.execute(f"SELECT count(*) FROM {ident(table)}").fetchall()[0][0])
    source, scale = table, 1.0
    if rows > SAMPLE_ROWS:
        source = "__dd_suggest_sample"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {source} AS SELECT * FROM {ident(table)} "
                    f"USING SAMPLE reservoir({SAMPLE_ROWS} ROWS) REPEATABLE (42)")
        scale = (rows / SAMPLE_ROWS) ** 2
    try:
        n, profile = _profile(con, source)
        id_column, roles = _roles(n, profile)
        comparisons = _comparisons(roles)
        if not comparisons:
            raise InputError("suggest: no column looks like a name, birth date, email, phone, id or address",
                             "write the dedupe section by hand (see rules/30-dedupe.yaml)")
        section: dict[str, Any] = {"id": id_column, "blocking": _candidate_blocking(roles),
                                   "comparisons": comparisons}
        if not section["blocking"]:
            raise InputError("suggest: no blocking rule fits these columns",
                             "write the dedupe section by hand (see rules/30-dedupe.yaml)")
        idc = ident(id_column)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE __dd_suggest_ids AS SELECT * FROM {ident(source)}
            WHERE nullif(trim(CAST({idc} AS VARCHAR)), '') IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY trim(CAST({idc} AS VARCHAR))) = 1""")  # one row per id
        counts = _pair_counts(con, "__dd_suggest_ids", section, scale)
    finally:
        con.execute("DROP TABLE IF EXISTS __dd_suggest_sample; DROP TABLE IF EXISTS __dd_suggest_ids")
    budget, total_budget = max(PAIRS_PER_ROW * rows, MIN_BUDGET), max(TOTAL_PAIRS_PER_ROW * rows, 2 * MIN_BUDGET)
    kept, total = [], 0
    for rule, pairs in zip(section["blocking"], counts, strict=True):
        if pairs <= budget and total + pairs <= total_budget:
            kept.append(rule)
            total += pairs
    section["blocking"] = kept or section["blocking"][:1]
    names = {c["column"]: c["column"] for c in comparisons}
    home = [c for role in HOME_ROLES for c in roles.get(role, [])]
    person = [c for c in names if c not in home and c not in roles.get("last_name", [])]
    section["household"] = {"comparisons": home, "person": person}
    veto = []
    if roles.get("first_name"):
        veto.append(roles["first_name"][0])  # disagreeing first names: twins, siblings
    if roles.get("birth_date"):
        veto.append(roles["birth_date"][0])
    if veto:
        section["veto"] = veto
        if roles.get("national_id"):
            section["veto_unless"] = [roles["national_id"][0]]
    section.update({"split_below": 0.01, "threshold": 0.95, "review": 0.5, "model": {"estimate": "em", "seed": 42}})
    consent = [p["column"] for p in profile if "consent" in p["column"].lower()]
    section["survivorship"] = {"default": "most_complete", **({"consent": consent} if consent else {})}
    return section


def suggest_yaml(section: dict[str, Any]) -> str:
    """The section as a rule file (``version: 1`` and ``dedupe:``), each blocking rule and comparison on a line."""
    import yaml

    def flow(value: Any) -> str:
        text = str(yaml.safe_dump([value], default_flow_style=True, width=10_000, allow_unicode=True)).strip()
        return text[1:-1]  # a one-item list, unwrapped: a scalar gets no document-end marker

    lines = ["# written by 'crmtool dedupe --suggest' from the profile of the data: review it, then keep it",
             "version: 1", "dedupe:"]
    for key, value in section.items():
        if key in ("blocking", "comparisons"):
            lines.append(f"  {key}:")
            lines.extend(f"    - {flow(item)}" for item in value)
        elif isinstance(value, dict):
            lines.append(f"  {key}:")
            lines.extend(f"    {k}: {flow(v)}" for k, v in value.items())
        else:
            lines.append(f"  {key}: {flow(value)}")
    return "\n".join(lines) + "\n"
