"""The floor of ``crmtool clean``: the example rules' logic written by hand as plain DuckDB SQL.

    python bench/clean_floor.py [--rows 1000000] [--runs 1] [--threads N] [--keep DIR] [--audit]

The rules are rules/10-normalise.yaml and rules/20-checks.yaml (trim, mojibake, NFC, title and
upper case, email normalisation and syntax fix, decimal comma, required and unique ids with
rejects, id pattern, phone E.164 fix, three date fixes, NIF/NIE fix, postal code, allowed
countries, spend range, one SQL check). The floor is what someone who knows DuckDB would write
for exactly that rule set on this export: decode cp1252 to UTF-8 in pieces, read once with row
numbers, one SELECT that computes every fixed column, the rejects from one window, and two
COPY statements, no audit log, no manifest, no step history, no distinct-value tables except
one for the three name columns (low cardinality, Python per value).

Where the rules need a library (ftfy for mojibake, the name title case, email-validator,
libphonenumber, python-stdnum) the floor does what crmtool does and no less: the same vectorised
SQL tests decide the bulk (crmtool's own SQL fragments for phones, emails, NIF/NIE, decimals
and dates are reused so that the logic is the same, not re-derived), and the library is called
as a DuckDB Python UDF only on the values that SQL leaves undecided. The flagging checks that
neither change nor reject a row (id pattern, postal code, allowed, range, the SQL rule) are
counted in the same SELECT, as a report would need them.

``--audit`` adds a third side, ``floor_audit``: the same floor, then the change set crmtool's audit
log holds for the run, written as plain SQL (one row per changed value per rule step and per
rejected row, the record as the keyed hash of the trimmed customer id, personal values as keyed
hashes, sorted by record, one zstd Parquet file with the audit log's row groups; no chain, seal or
manifest). Its rows must equal the rows of crmtool's change set parts (as multisets). The plain
floor writes no audit log at all, which crmtool must: the two ratios bracket what is crmtool's own
overhead and what is the cost of the record every run owes.

Both sides run in their own subprocess, alternately (``--runs``): crmtool as the real command
line (``crmtool clean --workspace :memory: --format json --quiet``), the floor as this script
with ``--side floor``. CPU (user+sys of the child, all threads) comes from the kernel
and peak RSS from GNU time. Then the outputs are compared: every clean row (parsed back from both CSV files, in
file order) and every reject (its row number and the rule that rejected it) must be equal, or
the script exits 1. Prints one JSON object with the medians and the ratio crmtool / floor.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RULES = [HERE.parent / "rules" / "10-normalise.yaml", HERE.parent / "rules" / "20-checks.yaml"]
COLUMNS = ["customer_id", "first_name", "last_name", "email", "phone", "birth_date", "national_id", "postal_code",
           "city", "country", "signup_date", "last_order_date", "total_spent", "email_consent"]


def _data(rows: int) -> Path:
    data = HERE / "data" / f"customers_{rows}.csv"
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(HERE / "gen_customers.py"), str(rows), str(data),
                        "--encoding", "cp1252", "--delimiter", ";"], check=True)
    return data


# --- the floor -------------------------------------------------------------------------------

def _to_utf8(src: Path, dst: Path) -> None:
    """cp1252 -> UTF-8 in 16 MB pieces (cp1252 is one byte a character: pieces cut anywhere)."""
    with src.open("rb") as fin, dst.open("wb") as fout:
        while piece := fin.read(1 << 24):
            fout.write(piece.decode("cp1252").encode("utf-8"))


def _udfs(con: object) -> None:
    from crmtool.emails.syntax import syntax_verdict
    from crmtool.kinds.national_id import es_id_verdict
    from crmtool.normalise import fix_mojibake, normalise_email, phone_e164, title_name

    def name(v: str) -> str:  # mojibake only where a byte is not ASCII, then NFC, then title case
        import unicodedata

        fixed = fix_mojibake(v) if not v.isascii() else v
        return title_name(unicodedata.normalize("NFC", fixed))

    def moj(v: str) -> str:  # the name steps one by one, for the change set (--audit)
        return fix_mojibake(v) if not v.isascii() else v

    def nfc(v: str) -> str:
        import unicodedata

        return unicodedata.normalize("NFC", v)

    funcs: dict[str, Callable[[str], str | None]] = {
        "name_fix": name,
        "name_moj": moj,
        "name_nfc": nfc,
        "name_title": title_name,
        "email_norm": normalise_email,
        "email_valid_form": lambda v: syntax_verdict(v)[1],
        "phone_e164": lambda v: phone_e164(v, "ES"),
        "nif": lambda v: es_id_verdict(v, "nif")[0],
    }
    def nullable(func: Callable[[str], str | None]) -> Callable[[str | None], str | None]:
        return lambda v: None if v is None else func(v)

    for fname, func in funcs.items():  # a library may answer NULL (an invalid number, say)
        con.create_function(fname, nullable(func), ["VARCHAR"], "VARCHAR",  # type: ignore[attr-defined]
                            null_handling="special")


def _select_sql(audit: bool = False) -> str:
    from crmtool.kinds.date import parsed_date_sql
    from crmtool.kinds.decimal import decimal_sql
    from crmtool.kinds.email_normalise import _is_plain_sql, _plain_sql
    from crmtool.kinds.email_sql import valid_email_fast_sql
    from crmtool.kinds.es_id_sql import es_id_fast_sql
    from crmtool.kinds.phone_sql import compact_sql, e164_fast_sql, invalid_fast_sql
    from crmtool.kinds.trim import WHITE_SPACE

    def trim(c: str) -> str:
        return (f"CASE WHEN regexp_matches({c}, '{WHITE_SPACE}') "
                f"THEN trim(regexp_replace({c}, '{WHITE_SPACE}+', ' ', 'g')) ELSE {c} END")

    def date_fix(c: str, formats: list[str], serial: bool) -> str:
        return f"coalesce(strftime({parsed_date_sql(c, formats, serial)}, '%Y-%m-%d'), {c})"

    cols = {c: trim(f'r."{c}"') for c in ("customer_id", "first_name", "last_name", "email", "phone",
                                           "national_id", "postal_code", "city", "country")}
    stage1 = ", ".join(f"{sql} AS {c}" for c, sql in cols.items())
    email = f"CASE WHEN {_is_plain_sql('s.email')} THEN {_plain_sql('s.email')} ELSE email_norm(s.email) END"
    phone = (f"CASE WHEN s.phone IS NULL THEN NULL ELSE coalesce({e164_fast_sql('', 'ES', compact='s.pc')}, "
             f"CASE WHEN {invalid_fast_sql('', 'ES', compact='s.pc')} THEN NULL ELSE phone_e164(s.phone) END) END")
    nif = ("CASE WHEN s.nif_fast IS NULL THEN nullif(nif(s.national_id), '') WHEN s.nif_fast = '' THEN NULL "
           "ELSE s.nif_fast END")
    return f"""
    WITH s AS (
        SELECT r._row, {stage1}, r.birth_date, r.signup_date, r.last_order_date, r.total_spent, r.email_consent
        FROM raw r),
    s2 AS (
        SELECT s.*, {email} AS email_n, {compact_sql('s.phone')} AS pc, {es_id_fast_sql('s.national_id')} AS nif_fast
        FROM (SELECT * REPLACE (upper(country) AS country){', country AS t_country' if audit else ''} FROM s) s)
    SELECT s._row,
           s.customer_id,
           coalesce(n1.new, s.first_name) AS first_name,
           coalesce(n2.new, s.last_name) AS last_name,
           coalesce(coalesce({valid_email_fast_sql('s.email_n')}, email_valid_form(s.email_n)), s.email_n) AS email,
           coalesce({phone.replace('s.phone IS NULL', 's.phone IS NULL')}, s.phone) AS phone,
           {date_fix('s.birth_date', ['%d/%m/%Y', '%Y-%m-%d'], True)} AS birth_date,
           coalesce({nif}, s.national_id) AS national_id,
           s.postal_code,
           coalesce(n3.new, s.city) AS city,
           s.country,
           {date_fix('s.signup_date', ['%d/%m/%Y', '%Y-%m-%d'], False)} AS signup_date,
           {date_fix('s.last_order_date', ['%d/%m/%Y', '%Y-%m-%d'], False)} AS last_order_date,
           coalesce({decimal_sql('s.total_spent', True)}, s.total_spent) AS total_spent,
           s.email_consent{_intermediates() if audit else ''}
    FROM s2 s
    LEFT JOIN names n1 ON n1.value = s.first_name
    LEFT JOIN names n2 ON n2.value = s.last_name
    LEFT JOIN names n3 ON n3.value = s.city"""


def run_floor(data: Path, out: Path, threads: int | None, audit: bool = False) -> dict[str, float]:
    import duckdb

    from crmtool.kinds.trim import WHITE_SPACE

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET enable_progress_bar = false")
    _udfs(con)
    with tempfile.TemporaryDirectory() as tmp:
        utf8 = Path(tmp) / "in.csv"
        _to_utf8(data, utf8)
        con.execute(f"CREATE TABLE raw AS SELECT row_number() OVER () AS _row, * FROM read_csv('{utf8}', delim=';', "
                    "header=true, all_varchar=true, quote='\"')")
    timings["load"] = time.perf_counter() - t0
    t = time.perf_counter()
    trim = (f"CASE WHEN regexp_matches(v, '{WHITE_SPACE}') "
            f"THEN trim(regexp_replace(v, '{WHITE_SPACE}+', ' ', 'g')) ELSE v END")
    names = ("SELECT value, moj, nfc, name_title(nfc) AS new FROM (SELECT value, moj, name_nfc(moj) AS nfc FROM "
             "(SELECT value, name_moj(value) AS moj FROM ({distinct})))" if audit  # the steps apart
             else "SELECT value, name_fix(value) AS new FROM ({distinct})")
    con.execute("CREATE TEMP TABLE names AS " + names.format(distinct=f"""
        SELECT DISTINCT {trim} AS value FROM (SELECT first_name AS v FROM raw UNION ALL SELECT last_name FROM raw
                                             UNION ALL SELECT city FROM raw) WHERE v IS NOT NULL"""))
    con.execute(f"CREATE TABLE fixed AS {_select_sql(audit)}")
    timings["fix"] = time.perf_counter() - t
    t = time.perf_counter()
    con.execute("""CREATE TABLE verdict AS SELECT _row, CASE
            WHEN customer_id IS NULL OR trim(customer_id) = '' THEN 'id_required'
            WHEN row_number() OVER (PARTITION BY customer_id ORDER BY _row) > 1 THEN 'id_unique' END AS rejected_by
        FROM fixed""")
    # the flagging checks, counted as a report needs them (no row changes)
    from crmtool.kinds.postal_code import PATTERNS

    flags = con.execute(f"""SELECT
        count(*) FILTER (WHERE trim(customer_id) <> '' AND NOT regexp_full_match(customer_id, 'C[0-9]{{7}}')),
        count(*) FILTER (WHERE upper(trim(postal_code)) <> '' AND (country IN ('ES', 'ESPAÑA') OR country IS NULL)
                         AND NOT regexp_full_match(upper(trim(postal_code)), '{PATTERNS["ES"]}')),
        count(*) FILTER (WHERE trim(country) <> '' AND country NOT IN ('ES', 'PT', 'FR', 'ESPAÑA')),
        count(*) FILTER (WHERE trim(total_spent) <> ''
                         AND coalesce(try_cast(total_spent AS DOUBLE) NOT BETWEEN 0 AND 100000, true)),
        count(*) FILTER (WHERE NOT coalesce(try_strptime(last_order_date, '%Y-%m-%d')
                                            >= try_strptime(signup_date, '%Y-%m-%d'), true))
        FROM fixed""").fetchall()
    timings["checks"] = time.perf_counter() - t
    t = time.perf_counter()
    cols = ", ".join(f'f."{c}"' for c in COLUMNS)
    con.execute(f"COPY (SELECT {cols} FROM fixed f JOIN verdict v USING (_row) WHERE v.rejected_by IS NULL "
                f"ORDER BY f._row) TO '{out / 'clean.csv'}' (HEADER, DELIMITER ',')")
    con.execute(f"COPY (SELECT v._row, v.rejected_by AS _rejected_by, {cols} FROM fixed f JOIN verdict v USING (_row) "
                f"WHERE v.rejected_by IS NOT NULL ORDER BY v._row) TO '{out / 'rejects.csv'}' (HEADER, DELIMITER ',')")
    timings["write"] = time.perf_counter() - t
    if audit:
        t = time.perf_counter()
        timings |= write_audit(con, out)
        timings["audit"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    timings["flag_counts"] = flags[0]  # type: ignore[assignment]
    return timings


# --- the floor's audit change set (--audit) ------------------------------------------------------

#: the example rules' fix steps: (rule, column, SQL of the value before, SQL of the value after) over
#: the fixed table f joined with the loaded rows r, in rule order (crmtool records one change per step)
NAME_COLUMNS = ("first_name", "last_name", "city")
TRIMMED = ("customer_id", "first_name", "last_name", "email", "phone", "national_id", "postal_code", "city", "country")
PERSONAL = {"first_name", "last_name", "email", "phone", "birth_date", "national_id", "postal_code", "city"}


def _intermediates() -> str:
    """The values between steps that the change set needs: each trimmed column, the name steps, the
    normalised email."""
    cols = [f", s.{c} AS t_{c}" for c in TRIMMED if c != "country"] + [", s.t_country"]  # (before upper case)
    cols += [f", n{i}.moj AS moj_{c}, n{i}.nfc AS nfc_{c}" for i, c in enumerate(NAME_COLUMNS, 1)]
    return "".join(cols) + ", s.email_n AS email_n"


def _steps() -> list[tuple[str, str, str, str]]:
    steps = [("trim_text", c, f"r_{c}", f"t_{c}") for c in TRIMMED]
    for c in NAME_COLUMNS:
        steps += [("repair_mojibake", c, f"t_{c}", f"moj_{c}"), ("unicode_nfc", c, f"moj_{c}", f"nfc_{c}"),
                  ("names_title_case", c, f"nfc_{c}", c)]
    steps += [("country_upper", "country", "t_country", "country"),
              ("email_lowercase", "email", "t_email", "email_n"),
              ("amount_decimal_comma", "total_spent", "r_total_spent", "total_spent"),
              ("email_syntax", "email", "email_n", "email"),
              ("phone_e164", "phone", "t_phone", "phone"),
              ("birth_date_valid", "birth_date", "r_birth_date", "birth_date"),
              ("signup_date_valid", "signup_date", "r_signup_date", "signup_date"),
              ("last_order_date_valid", "last_order_date", "r_last_order_date", "last_order_date"),
              ("nif_nie_valid", "national_id", "t_national_id", "national_id")]
    return steps


RAW_READ = (*TRIMMED, "total_spent", "birth_date", "signup_date", "last_order_date")


def write_audit(con: Any, out: Path) -> dict[str, float]:
    """The change set crmtool's audit log holds for this run, written as plain SQL: one row per
    changed value and per rejected row (rule, row, record = keyed hash of the trimmed customer id,
    field, old and new as JSON text, personal values as keyed hashes), sorted by record, row, field
    and rule, as one zstd Parquet file with the audit log's row groups. No chain, seal or manifest.

    One join puts the loaded values and the record hash beside the fixed row; each step is then a
    filter of that table, and one sort orders them all. Two more engineered variants were timed
    in one profile (2026-12-03, load 3.5-4, each step materialised) and were no faster: this one
    22.8 s of statements; keyed hashes per distinct value joined back, with an integer sort key
    from each record's position, 23.1 s; the same with the hashes taken in the sorted SELECT,
    23.1 s. crmtool's own change set is cheaper
    because its fixes already run per distinct value, where the hashes are taken, and it sorts
    eight parts in a thread beside the output writes (decisions 0005 and 0008)."""
    from crmtool.keys import KeyedHasher

    KeyedHasher(os.environ["CRMTOOL_KEY"].encode("utf-8"), "env").register_sql(con)
    raw_cols = ", ".join(f"r.{c} AS r_{c}" for c in RAW_READ)
    t = time.perf_counter()
    con.execute(f"CREATE TEMP TABLE w AS SELECT f.*, {raw_cols}, 'k:' || crm_token(trim(r.customer_id)) AS record "
                f"FROM fixed f JOIN raw r USING (_row)")

    def value(column: str, expr: str) -> str:
        if column in PERSONAL:
            return f"coalesce('\"k:' || crm_token({expr}) || '\"', 'null')"
        return f"coalesce(to_json(CAST({expr} AS VARCHAR)), 'null')"

    seconds = {"audit.records": time.perf_counter() - t}
    t = time.perf_counter()
    steps = _steps()
    fields = {c: i for i, c in enumerate(sorted({col for _r, col, _o, _n in steps} | {"customer_id"}))}
    rules = {r: i for i, r in enumerate(sorted({r for r, *_rest in steps} | {"id_unique"}))}
    changes = " UNION ALL ".join(
        f"SELECT '{rule}' AS rule, _row, record, '{col}' AS field, {value(col, old)} AS old, {value(col, new)} AS new, "
        f"{fields[col] * 64 + rules[rule] * 2} AS rank FROM w WHERE {old} IS NOT NULL AND {old} IS DISTINCT FROM {new}"
        for rule, col, old, new in steps)
    con.execute(f"""COPY (
        SELECT type, rule, "row", CAST(NULL AS BIGINT) AS line, record, field, old, new, reason FROM (
            SELECT 'change' AS type, rule, _row AS "row", record, field, old, new, CAST(NULL AS VARCHAR) AS reason, rank
            FROM ({changes})
            UNION ALL
            SELECT 'reject', v.rejected_by, v._row, w.record, 'customer_id', NULL, NULL,
                   'repeats the key of an earlier row', {fields["customer_id"] * 64 + rules["id_unique"] * 2 + 1}
            FROM verdict v JOIN w USING (_row) WHERE v.rejected_by = 'id_unique')
        ORDER BY record, "row", rank)
        TO '{out / "changes.parquet"}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE 8192)""")
    seconds["audit.changes"] = time.perf_counter() - t
    return seconds


# --- the comparison ----------------------------------------------------------------------------

def compare(crm_out: Path, floor_out: Path, stem: str) -> dict[str, int]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")

    def rd(path: Path) -> str:
        return f"(SELECT row_number() OVER () AS _n, * FROM read_csv('{path}', header=true, all_varchar=true))"

    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    crm_clean, floor_clean = rd(crm_out / f"{stem}.clean.csv"), rd(floor_out / "clean.csv")
    diff_clean = con.execute(f"SELECT count(*) FROM (SELECT _n, {cols} FROM {crm_clean} "
                             f"EXCEPT ALL SELECT _n, {cols} FROM {floor_clean})").fetchone()[0]  # type: ignore[index]
    diff_clean += con.execute(f"SELECT count(*) FROM (SELECT _n, {cols} FROM {floor_clean} "
                              f"EXCEPT ALL SELECT _n, {cols} FROM {crm_clean})").fetchone()[0]  # type: ignore[index]
    def rejects(path: Path) -> str:
        return (f"(SELECT CAST(_row AS BIGINT) AS r, _rejected_by AS b "
                f"FROM read_csv('{path}', header=true, all_varchar=true))")

    crm_rej, floor_rej = rejects(crm_out / f"{stem}.rejects.csv"), rejects(floor_out / "rejects.csv")
    diff_rej = con.execute(f"SELECT count(*) FROM ((SELECT * FROM {crm_rej} EXCEPT ALL SELECT * FROM {floor_rej}) "
                           f"UNION ALL (SELECT * FROM {floor_rej} EXCEPT ALL SELECT * FROM {crm_rej}))").fetchone()[0]  # type: ignore[index]
    n_clean = con.execute(f"SELECT count(*) FROM {crm_clean}").fetchone()[0]  # type: ignore[index]
    n_rej = con.execute(f"SELECT count(*) FROM {crm_rej}").fetchone()[0]  # type: ignore[index]
    return {"clean_rows": n_clean, "rejects": n_rej, "clean_rows_differing": diff_clean, "rejects_differing": diff_rej}


def compare_audit(crm_out: Path, floor_out: Path) -> dict[str, int]:
    """crmtool's change set (its audit log's parts) against the floor's, as multisets of rows."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    cols = 'type, rule, "row", record, field, old, new, reason'
    crm = f"(SELECT {cols} FROM read_parquet('{crm_out / 'crmtool.audit' / 'sets' / '*.parquet'}'))"
    floor = f"(SELECT {cols} FROM read_parquet('{floor_out / 'changes.parquet'}'))"
    differing = con.execute(f"SELECT count(*) FROM ((SELECT * FROM {crm} EXCEPT ALL SELECT * FROM {floor}) "
                            f"UNION ALL (SELECT * FROM {floor} EXCEPT ALL SELECT * FROM {crm}))").fetchone()[0]  # type: ignore[index]
    rows = con.execute(f"SELECT count(*) FROM {crm}").fetchone()[0]  # type: ignore[index]
    return {"change_set_rows": rows, "change_set_rows_differing": differing}


def _child(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall, CPU (user+sys, all threads) and peak RSS of one child (GNU time's %M)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        sys.exit(f"{cmd[:4]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    peak_kib = int(proc.stderr.strip().splitlines()[-1])
    result = {"wall": wall, "cpu": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
              "peak_gib": peak_kib / 1024 / 1024}
    if proc.stdout.startswith("{") and '"total"' in proc.stdout:  # the floor's own phases (wall)
        result |= {f"floor.{k}": v for k, v in json.loads(proc.stdout).items() if isinstance(v, float)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads of the floor (default DuckDB's)")
    parser.add_argument("--keep", type=Path, default=None, help="folder for the outputs (default a temporary one)")
    parser.add_argument("--audit", action="store_true",
                        help="also run the floor that writes the same audit change set as crmtool (side floor_audit)")
    parser.add_argument("--side", choices=["floor", "floor_audit"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:  # the child
        print(json.dumps(run_floor(args.data, args.out, args.threads, audit=args.side == "floor_audit")))
        return
    data = _data(args.rows)
    work = Path(args.keep or tempfile.mkdtemp(prefix="clean_floor_"))
    env = dict(os.environ, CRMTOOL_KEY=os.environ.get("CRMTOOL_KEY", "bench-key-0123456789abcdef"))
    sides = ("crmtool", "floor", "floor_audit") if args.audit else ("crmtool", "floor")
    results: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    report: dict[str, object] = {"rows": args.rows, "data": str(data), "load_before": os.getloadavg(),
                                 "cpus": os.cpu_count()}
    for _ in range(args.runs):
        for side in sides:  # alternately, so all see the same load
            out = work / side
            shutil.rmtree(out, ignore_errors=True)
            if side == "crmtool":
                cmd = [sys.executable, "-m", "crmtool", "clean", str(data), "--out", str(out), "--workspace",
                       ":memory:", "--format", "json", "--quiet"] + [a for r in RULES for a in ("--rules", str(r))]
            else:
                cmd = [sys.executable, __file__, "--side", side, "--data", str(data), "--out", str(out)]
                cmd += ["--threads", str(args.threads)] if args.threads else []
            results[side].append(_child(cmd, env))
    report["load_after"] = os.getloadavg()
    med = {side: {k: round(statistics.median(r[k] for r in runs), 3) for k in ("wall", "cpu")}
           for side, runs in results.items()}
    report["median"] = med
    report["ratio_crmtool_over_floor"] = {k: round(med["crmtool"][k] / med["floor"][k], 2) for k in ("wall", "cpu")}
    if args.audit:
        report["ratio_crmtool_over_floor_audit"] = {k: round(med["crmtool"][k] / med["floor_audit"][k], 2)
                                                    for k in ("wall", "cpu")}
    for side in sides[1:]:
        report[f"{side}_phases_wall"] = {k: round(statistics.median(r[k] for r in results[side]), 2)
                                         for k in results[side][0] if k.startswith("floor.")}
    report["peak_rss_gib"] = {side: [round(r["peak_gib"], 2) for r in runs] for side, runs in results.items()}
    print(json.dumps(report), file=sys.stderr)  # the figures, in case the comparison fails
    report["same_results"] = compare(work / "crmtool", work / "floor", data.stem)
    if args.audit:
        report["same_results_floor_audit"] = (compare(work / "crmtool", work / "floor_audit", data.stem)
                                              | compare_audit(work / "crmtool", work / "floor_audit"))
    print(json.dumps(report, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    for key in ("same_results", "same_results_floor_audit"):
        same: dict[str, int] = report.get(key, {})  # type: ignore[assignment]
        if any(v for k, v in same.items() if k.endswith("_differing")):
            sys.exit(f"the floor and crmtool disagree ({key}): not a floor of the same logic")


if __name__ == "__main__":
    main()
