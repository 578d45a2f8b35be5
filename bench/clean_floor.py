"""The floor of ``crmtool clean``: the example rules' logic written by hand as plain DuckDB SQL.

    python bench/clean_floor.py [--rows 1000000] [--runs 1] [--threads N] [--keep DIR]

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

    funcs = {
        "name_fix": name,
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


def _select_sql() -> str:
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
        FROM (SELECT * REPLACE (upper(country) AS country) FROM s) s)
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
           s.email_consent
    FROM s2 s
    LEFT JOIN names n1 ON n1.value = s.first_name
    LEFT JOIN names n2 ON n2.value = s.last_name
    LEFT JOIN names n3 ON n3.value = s.city"""


def run_floor(data: Path, out: Path, threads: int | None) -> dict[str, float]:
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
    con.execute(f"""CREATE TEMP TABLE names AS SELECT value, name_fix(value) AS new FROM (
        SELECT DISTINCT {trim} AS value FROM (SELECT first_name AS v FROM raw UNION ALL SELECT last_name FROM raw
                                             UNION ALL SELECT city FROM raw) WHERE v IS NOT NULL)""")
    con.execute(f"CREATE TABLE fixed AS {_select_sql()}")
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
    timings["total"] = time.perf_counter() - t0
    timings["flag_counts"] = flags[0]  # type: ignore[assignment]
    return timings


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
    parser.add_argument("--side", choices=["floor"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "floor":  # the child
        print(json.dumps(run_floor(args.data, args.out, args.threads)))
        return
    data = _data(args.rows)
    work = Path(args.keep or tempfile.mkdtemp(prefix="clean_floor_"))
    env = dict(os.environ, CRMTOOL_KEY=os.environ.get("CRMTOOL_KEY", "bench-key-0123456789abcdef"))
    results: dict[str, list[dict[str, float]]] = {"crmtool": [], "floor": []}
    report: dict[str, object] = {"rows": args.rows, "data": str(data), "load_before": os.getloadavg(),
                                 "cpus": os.cpu_count()}
    for _ in range(args.runs):
        for side in ("crmtool", "floor"):  # alternately, so both see the same load
            out = work / side
            shutil.rmtree(out, ignore_errors=True)
            if side == "crmtool":
                cmd = [sys.executable, "-m", "crmtool", "clean", str(data), "--out", str(out), "--workspace",
                       ":memory:", "--format", "json", "--quiet"] + [a for r in RULES for a in ("--rules", str(r))]
            else:
                cmd = [sys.executable, __file__, "--side", "floor", "--data", str(data), "--out", str(out)]
                cmd += ["--threads", str(args.threads)] if args.threads else []
            results[side].append(_child(cmd, env))
    report["load_after"] = os.getloadavg()
    med = {side: {k: round(statistics.median(r[k] for r in runs), 3) for k in ("wall", "cpu")}
           for side, runs in results.items()}
    report["median"] = med
    report["ratio_crmtool_over_floor"] = {k: round(med["crmtool"][k] / med["floor"][k], 2) for k in ("wall", "cpu")}
    report["floor_phases_wall"] = {k: round(statistics.median(r[k] for r in results["floor"]), 2)
                                   for k in results["floor"][0] if k.startswith("floor.")}
    report["peak_rss_gib"] = {side: [round(r["peak_gib"], 2) for r in runs] for side, runs in results.items()}
    print(json.dumps(report), file=sys.stderr)  # the figures, in case the comparison fails
    report["same_results"] = compare(work / "crmtool", work / "floor", data.stem)
    print(json.dumps(report, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    same = report["same_results"]
    if same["clean_rows_differing"] or same["rejects_differing"]:  # type: ignore[index]
        sys.exit("the floor and crmtool disagree: not a floor of the same logic")


if __name__ == "__main__":
    main()
