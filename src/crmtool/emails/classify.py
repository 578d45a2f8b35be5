"""Classify email addresses: status, reasons, suggestion, risk and tags, per distinct address.

Work is set-based: the distinct addresses go through DuckDB (syntax fast path, role and random
local parts, history joins, the final assembly); Python runs only on what SQL cannot do, once
per distinct value: email-validator on the addresses the fast path leaves, and the domain checks
(disposable, typo, lookalike, TLD, provider) once per distinct *domain*. MX answers come from
:mod:`crmtool.emails.mx` (opt-in) and history from :mod:`crmtool.emails.bounces`.

Status (first that applies): ``invalid`` when a reason says the address cannot receive mail
(:data:`INVALID_REASONS`), ``risky`` for :data:`RISKY_REASONS`, ``unknown`` when DNS did not
answer in time, ``valid`` otherwise. ``risk`` combines the weights of the reasons as a noisy-OR:
``100 * (1 - prod(1 - w/100))`` with the weights in :data:`WEIGHTS` (0 for no reason).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crmtool.db import fetch_arrow, fetch_column, map_in_batches, python_relation, scalar
from crmtool.emails.lists import SHORT_QUALIFIER, EmailLists, builtin, role_head_sql
from crmtool.emails.randomness import THRESHOLD, random_score_query
from crmtool.emails.syntax import fast_normalized_sql, fast_path_sql, syntax_verdict

if TYPE_CHECKING:
    import duckdb

    from crmtool.emails.mx import MxReport

#: every reason, in the order they are listed
REASONS = (
    "syntax",
    "bad_tld",
    "domain_not_found",
    "no_mx",
    "hard_bounced",
    "disposable",
    "homoglyph",
    "mixed_script",
    "typo_domain",
    "random_local",
    "role",
    "soft_bounced_repeatedly",
    "suppressed",
    "dns_timeout",
)
INVALID_REASONS = frozenset({"syntax", "bad_tld", "domain_not_found", "no_mx", "hard_bounced"})
RISKY_REASONS = frozenset(
    {
        "disposable",
        "homoglyph",
        "mixed_script",
        "typo_domain",
        "random_local",
        "role",
        "soft_bounced_repeatedly",
        "suppressed",
    }
)
UNKNOWN_REASONS = frozenset({"dns_timeout"})
WEIGHTS = {
    "syntax": 100,
    "bad_tld": 100,
    "domain_not_found": 100,
    "no_mx": 95,
    "hard_bounced": 100,
    "homoglyph": 90,
    "disposable": 80,
    "typo_domain": 75,
    "suppressed": 70,
    "mixed_script": 60,
    "soft_bounced_repeatedly": 60,
    "random_local": 50,
    "role": 30,
    "dns_timeout": 25,
}
TAGS = ("free_provider", "corporate")


def reason_name(reason: str) -> str:
    """``syntax:no_at`` -> ``syntax``."""
    return reason.split(":", 1)[0]


def normalise_email_sql(value_sql: str) -> str:
    """SQL equal to :func:`crmtool.normalise.normalise_email` (the hashing normalisation)."""
    v = f"trim(regexp_replace({value_sql}, '\\s+', ' ', 'g'))"
    v = f"trim(trim({v}, '<>'))"
    v = f"CASE WHEN lower({v}) LIKE 'mailto:%' THEN substr({v}, 8) ELSE {v} END"
    return f"lower(replace({v}, ' ', ''))"


@dataclass(frozen=True)
class ClassifyOptions:
    """What to check. ``lists`` defaults to the built-in lists (no user folder)."""

    lists: EmailLists | None = None
    mx: bool = False
    resolver: str | None = None
    mx_timeout: float = 3.0
    mx_budget: float = 60.0
    mx_concurrency: int = 64
    mx_refresh: bool = False
    history: bool = True  # bounces and suppressions from the workspace, when present
    soft_bounces: int = 3
    soft_window_days: int = 30
    now: datetime | None = None


@dataclass
class ClassifyResult:
    """``table``: a temp table ``(value, normalized, domain, status, reasons, suggestion, risk, tags)``."""

    table: str
    addresses: int
    domains: int
    mx: MxReport | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _quiet(con: duckdb.DuckDBPyConnection) -> None:
    import contextlib

    import duckdb

    with contextlib.suppress(duckdb.Error):
        con.execute("SET enable_progress_bar = false")


def _register(
    con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, Any], types: dict[str, str]
) -> None:
    """Create temp table ``name`` from Python lists (one hand-over, no row loop in SQL)."""
    varchar = [k for k, t in types.items() if t == "VARCHAR"]
    cols = ", ".join(f'CAST("{k}" AS {t}) AS "{k}"' for k, t in types.items())
    with python_relation(con, columns, varchar) as (source, params):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {cols} FROM {source}", params)


_ANGLE = re.compile(r"<([^<>]+)>\s*$")


def _slow_syntax(values: list[str]) -> dict[str, list[Any]]:
    from crmtool.normalise import normalise_email

    out: dict[str, list[Any]] = {"value": [], "ok": [], "normalized": [], "detail": [], "fixed": [], "local": [],
                                 "domain": []}
    for v in values:
        ok, norm, detail = syntax_verdict(v)
        fixed = None
        if not ok and detail != "syntax:too_long":
            inner = _ANGLE.search(v)  # 'Ana Ruiz <ana@x.es>': the address inside the brackets
            for candidate in (normalise_email(v), normalise_email(inner.group(1)) if inner else ""):
                if candidate and candidate != v:
                    fok, fnorm, _ = syntax_verdict(candidate)
                    if fok:
                        fixed = fnorm
                        break
        out["value"].append(v)
        out["ok"].append(ok)
        out["normalized"].append(norm)
        out["detail"].append(detail)
        out["fixed"].append(fixed)
        local, _, domain = norm.rpartition("@") if norm else (None, None, None)
        out["local"].append(local)
        out["domain"].append(domain)
    return out


def _domain_facts(domains: list[str], lists: EmailLists) -> dict[str, list[Any]]:
    """Per distinct domain (Unicode form): ascii form, TLD, disposable, provider, typo, lookalike."""
    import idna

    from crmtool.emails.homoglyph import HomoglyphDetector
    from crmtool.emails.tld import tld_ok
    from crmtool.emails.typos import TypoDetector

    allow = set(builtin("allow")) | set(lists.allow)
    typo = TypoDetector(lists.providers, allow)
    look = HomoglyphDetector([*lists.providers, *allow])
    providers = frozenset(lists.providers)
    out: dict[str, list[Any]] = {
        k: []
        for k in (
            "domain",
            "ascii",
            "tld_ok",
            "disposable",
            "provider",
            "typo",
            "homoglyph",
            "mixed",
            "lookalike",
        )
    }
    for d in domains:
        try:
            ascii_d = d if d.isascii() else idna.encode(d, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            ascii_d = d
        ascii_d = ascii_d.lower()
        homo, mixed, lookalike = look.check(d)
        suggestion = None if homo else typo.suggest(ascii_d)
        out["domain"].append(d)
        out["ascii"].append(ascii_d)
        out["tld_ok"].append(tld_ok(ascii_d))
        out["disposable"].append(lists.is_disposable(ascii_d))
        out["provider"].append(ascii_d in providers)
        out["typo"].append(suggestion)
        out["homoglyph"].append(homo)
        out["mixed"].append(mixed)
        out["lookalike"].append(lookalike)
    return out


def _syntax_table(con: duckdb.DuckDBPyConnection, values_table: str, prefix: str, timings: dict[str, float]) -> None:
    """Step 1, syntax: the fast path in SQL, the rest through email-validator, into ``<prefix>_addr``."""
    import time

    t0 = time.perf_counter()
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {prefix}_v AS SELECT DISTINCT CAST(value AS VARCHAR) AS value "
        f"FROM {values_table} WHERE value IS NOT NULL"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {prefix}_fast AS "
        f"SELECT value, coalesce({fast_path_sql('value')}, false) AS fast FROM {prefix}_v"
    )
    timings["syntax_sql"] = round(time.perf_counter() - t0, 3)
    types = {"value": "VARCHAR", "ok": "BOOLEAN", "normalized": "VARCHAR", "detail": "VARCHAR", "fixed": "VARCHAR",
             "local": "VARCHAR", "domain": "VARCHAR"}
    # a batch at a time: Python never holds all the slow addresses of a large export at once
    map_in_batches(con, f"SELECT value FROM {prefix}_fast WHERE NOT fast", f"{prefix}_slow", _slow_syntax, types)
    timings["syntax_python"] = round(time.perf_counter() - t0 - timings["syntax_sql"], 3)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {prefix}_addr AS
        SELECT value, true AS ok, {fast_normalized_sql("value")} AS normalized, NULL::VARCHAR AS detail,
               NULL::VARCHAR AS fixed, lower(split_part(value, '@', 2)) AS domain, split_part(value, '@', 1) AS local
        FROM {prefix}_fast WHERE fast
        UNION ALL
        SELECT value, ok, normalized, detail, fixed, domain, local FROM {prefix}_slow""")
    timings["syntax"] = round(time.perf_counter() - t0, 3)


def _domain_table(con: duckdb.DuckDBPyConnection, prefix: str, lists: EmailLists) -> list[str]:
    """Step 2: the facts of each distinct domain of a valid address, in Python, into ``<prefix>_dom``."""
    domains: list[str] = fetch_column(con, f"SELECT DISTINCT domain FROM {prefix}_addr WHERE ok")
    _register(
        con,
        f"{prefix}_dom",
        _domain_facts(domains, lists),
        {
            "domain": "VARCHAR",
            "ascii": "VARCHAR",
            "tld_ok": "BOOLEAN",
            "disposable": "BOOLEAN",
            "provider": "BOOLEAN",
            "typo": "VARCHAR",
            "homoglyph": "BOOLEAN",
            "mixed": "BOOLEAN",
            "lookalike": "VARCHAR",
        },
    )
    return domains


def _local_part_table(con: duckdb.DuckDBPyConnection, prefix: str, lists: EmailLists) -> None:
    """Step 3: role accounts and random local parts, in SQL, into ``<prefix>_loc``."""
    _register(con, f"{prefix}_roles", {"role": sorted(lists.roles)}, {"role": "VARCHAR"})
    _register(con, f"{prefix}_rq", {"q": sorted(lists.role_qualifiers)}, {"q": "VARCHAR"})
    _register(con, f"{prefix}_rn", {"n": sorted(lists.short_names)}, {"n": "VARCHAR"})
    role_key = ("regexp_replace(regexp_replace(strip_accents(lower(split_part(local, '+', 1))), '[._-]+', '', 'g'), "
                "'[0-9]+$', '')")
    head, rest = role_head_sql("local")
    # a role, or a role before a separator and a qualifier (pedidos.web, secretaria.geral, info-es)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {prefix}_loc AS
        SELECT a.value, r.role IS NOT NULL OR (h.role IS NOT NULL AND (q.q IS NOT NULL
                   OR (length(a.tk) BETWEEN 1 AND {SHORT_QUALIFIER} AND regexp_matches(a.tk, '^[a-z]+$')
                       AND n.n IS NULL))) AS role,
               coalesce(s.random_score, 0) AS random_score
        FROM (SELECT value, {role_key} AS rk, {head} AS hk, {rest} AS tk FROM {prefix}_addr WHERE ok) a
        LEFT JOIN {prefix}_roles r ON r.role = a.rk
        LEFT JOIN {prefix}_roles h ON h.role = a.hk AND a.hk <> '' AND a.tk <> ''
        LEFT JOIN {prefix}_rq q ON q.q = a.tk
        LEFT JOIN {prefix}_rn n ON n.n = a.tk
        LEFT JOIN ({random_score_query(f"{prefix}_addr WHERE ok", "value", "local")}) s ON s.value = a.value""")


def _history_table(con: duckdb.DuckDBPyConnection, prefix: str, options: ClassifyOptions) -> str | None:
    """Step 4a: bounce and suppression history per address (when asked); returns its table or None."""
    if not options.history:
        return None
    from crmtool.emails.bounces import history_table

    return history_table(
        con,
        f"{prefix}_addr",
        soft_bounces=options.soft_bounces,
        window_days=options.soft_window_days,
        prefix=prefix,
    )


def _mx_table(con: duckdb.DuckDBPyConnection, prefix: str, options: ClassifyOptions) -> MxReport:
    """Step 4b: the MX answer of each domain with a valid TLD, into ``<prefix>_mx``."""
    from crmtool.emails.mx import check_domains

    asked = fetch_column(con, f"SELECT DISTINCT ascii FROM {prefix}_dom WHERE tld_ok ORDER BY 1")
    mx_report = check_domains(
        con,
        asked,
        resolver=options.resolver,
        timeout=options.mx_timeout,
        budget=options.mx_budget,
        concurrency=options.mx_concurrency,
        refresh=options.mx_refresh,
        now=options.now,
    )
    _register(
        con,
        f"{prefix}_mx",
        {"ascii": list(mx_report.statuses), "mx": list(mx_report.statuses.values())},
        {"ascii": "VARCHAR", "mx": "VARCHAR"},
    )
    return mx_report


def _reason_conditions(hist: str | None, mx: bool) -> dict[str, str]:
    """The SQL condition of each reason over the joined address (a), domain (d), local part (l),
    history (h) and MX (m) rows; reasons whose facts were not gathered are false."""
    return {
        "syntax": "NOT a.ok",
        "bad_tld": "a.ok AND NOT d.tld_ok",
        "domain_not_found": "m.mx = 'not_found'" if mx else "false",
        "no_mx": "m.mx IN ('no_mx', 'null_mx')" if mx else "false",
        "hard_bounced": "h.hard" if hist else "false",
        "disposable": "d.disposable",
        "homoglyph": "d.homoglyph",
        "mixed_script": "d.mixed",
        "typo_domain": "d.typo IS NOT NULL",
        "random_local": f"l.random_score >= {THRESHOLD}",
        "role": "l.role",
        "soft_bounced_repeatedly": "h.soft_repeated AND NOT h.hard" if hist else "false",
        "suppressed": "h.suppressed" if hist else "false",
        "dns_timeout": "m.mx IN ('timeout', 'error')" if mx else "false",
    }


def _assemble(con: duckdb.DuckDBPyConnection, prefix: str, hist: str | None, mx: bool) -> str:
    """Step 5: join every step's facts into ``<prefix>_result`` (status, reasons, suggestion, risk, tags)."""
    conds = _reason_conditions(hist, mx)
    flags = ", ".join(f"coalesce({conds[r]}, false) AS r_{r}" for r in REASONS)
    items = []
    for reason in REASONS:
        label = "coalesce(detail, 'syntax:invalid')" if reason == "syntax" else f"'{reason}'"
        items.append(f"CASE WHEN r_{reason} THEN {label} END")
    reasons_sql = f"list_filter([{', '.join(items)}], lambda x: x IS NOT NULL)"
    risk_terms = " * ".join(f"(CASE WHEN r_{r} THEN {1 - WEIGHTS[r] / 100:.2f} ELSE 1 END)" for r in REASONS)
    joins = [
        f"LEFT JOIN {prefix}_dom d ON d.domain = a.domain AND a.ok",
        f"LEFT JOIN {prefix}_loc l ON l.value = a.value",
    ]
    if hist:
        joins.append(f"LEFT JOIN {hist} h ON h.value = a.value")
    if mx:
        joins.append(f"LEFT JOIN {prefix}_mx m ON m.ascii = d.ascii")

    def any_of(names: frozenset[str]) -> str:
        return " OR ".join(f"r_{r}" for r in REASONS if r in names)

    out = f"{prefix}_result"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {out} AS
        SELECT value, normalized, domain,
               CASE WHEN {any_of(INVALID_REASONS)} THEN 'invalid'
                    WHEN {any_of(RISKY_REASONS)} THEN 'risky'
                    WHEN {any_of(UNKNOWN_REASONS)} THEN 'unknown'
                    ELSE 'valid' END AS status,
               {reasons_sql} AS reasons,
               suggestion,
               CAST(round(100 * (1 - {risk_terms})) AS INTEGER) AS risk,
               list_filter([CASE WHEN provider THEN 'free_provider' END,
                            CASE WHEN corporate THEN 'corporate' END], lambda x: x IS NOT NULL) AS tags
        FROM (SELECT a.value, a.normalized, a.domain, a.detail, {flags},
                     CASE WHEN d.lookalike IS NOT NULL THEN a.local || '@' || d.lookalike
                          WHEN d.typo IS NOT NULL THEN a.local || '@' || d.typo
                          WHEN NOT a.ok THEN a.fixed END AS suggestion,
                     coalesce(d.provider, false) AS provider,
                     coalesce(a.ok AND NOT d.provider AND NOT d.disposable AND d.tld_ok
                              AND d.typo IS NULL AND NOT d.homoglyph, false) AS corporate
              FROM {prefix}_addr a {" ".join(joins)})""")
    return out


def classify_values(
    con: duckdb.DuckDBPyConnection,
    values_table: str,
    options: ClassifyOptions | None = None,
    *,
    prefix: str = "__em",
) -> ClassifyResult:
    """Classify the distinct non-null ``value`` column of ``values_table`` (VARCHAR).

    Returns a :class:`ClassifyResult` naming a temp table with one row per value. Uses the
    workspace tables ``email_bounces`` / ``privacy_suppressions`` when present and the
    ``crm_token`` macro is registered (``ws.hasher``), and ``email_mx_cache`` when ``mx`` is on.
    """
    import time

    options = options or ClassifyOptions()
    lists = options.lists or EmailLists.load()
    timings: dict[str, float] = {}
    _quiet(con)
    # 1. syntax: fast path in SQL, the rest through email-validator (once per distinct value)
    _syntax_table(con, values_table, prefix, timings)
    # 2. per distinct domain, in Python
    t1 = time.perf_counter()
    domains = _domain_table(con, prefix, lists)
    timings["domains"] = round(time.perf_counter() - t1, 3)
    # 3. role accounts and random local parts, in SQL
    t2 = time.perf_counter()
    _local_part_table(con, prefix, lists)
    timings["local_parts"] = round(time.perf_counter() - t2, 3)
    # 4. history (bounces, suppressions) and MX
    t3 = time.perf_counter()
    hist = _history_table(con, prefix, options)
    timings["history"] = round(time.perf_counter() - t3, 3)
    mx_report = None
    if options.mx:
        t4 = time.perf_counter()
        mx_report = _mx_table(con, prefix, options)
        timings["mx"] = round(time.perf_counter() - t4, 3)
    # 5. assemble
    t5 = time.perf_counter()
    out = _assemble(con, prefix, hist, mx_report is not None)
    timings["assemble"] = round(time.perf_counter() - t5, 3)
    for t in ("_v", "_fast", "_slow", "_loc", "_addr", "_dom", "_roles", "_rq", "_rn", "_tok", "_hist", "_mx"):
        con.execute(f"DROP TABLE IF EXISTS {prefix}{t}")
    n = int(scalar(con, f"SELECT count(*) FROM {out}") or 0)
    return ClassifyResult(out, n, len(domains), mx_report, timings)


def classify_list(
    con: duckdb.DuckDBPyConnection, values: list[str], options: ClassifyOptions | None = None
) -> dict[str, dict[str, Any]]:
    """Convenience for Python users and tests: ``{value: {status, reasons, ...}}``."""
    _register(con, "__em_input", {"value": list(values)}, {"value": "VARCHAR"})
    result = classify_values(con, "__em_input", options)
    rows = fetch_arrow(con, f"SELECT * FROM {result.table}").to_pylist()
    return {r["value"]: r for r in rows}
