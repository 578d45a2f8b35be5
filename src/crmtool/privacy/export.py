"""Pseudonymised sharing: copy an export for another department following a YAML policy per column.

Actions: ``keep``; ``drop``; ``hash`` (keyed HMAC-SHA-256 token of the normalised value: the same
person gets the same token in every export made with the same key, and it cannot be reversed
without the key); ``mask`` (``a***@gmail.com``, ``***456`` for phones, ``J***`` for text);
``generalise`` (dates to ``year``, ``decade`` or ``age_band``; postal codes to ``province`` or
``postal_prefix``). Columns the policy does not name follow ``default`` (``drop`` unless said).

The output's manifest names the key by fingerprint (never the key), so two exports can be joined
on their tokens only when the fingerprints match. People erased earlier are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.errors import ConfigError, Location
from crmtool.privacy.consent import date_sql
from crmtool.sqltext import ident
from crmtool.status import Status

if TYPE_CHECKING:
    from crmtool.io.writers import OutputOptions
    from crmtool.workspace import Run, Workspace

STAGING = "__privacy_export"
PROVINCES = {
    "01": "Araba/Álava",
    "02": "Albacete",
    "03": "Alicante/Alacant",
    "04": "Almería",
    "05": "Ávila",
    "06": "Badajoz",
    "07": "Illes Balears",
    "08": "Barcelona",
    "09": "Burgos",
    "10": "Cáceres",
    "11": "Cádiz",
    "12": "Castellón/Castelló",
    "13": "Ciudad Real",
    "14": "Córdoba",
    "15": "A Coruña",
    "16": "Cuenca",
    "17": "Girona",
    "18": "Granada",
    "19": "Guadalajara",
    "20": "Gipuzkoa",
    "21": "Huelva",
    "22": "Huesca",
    "23": "Jaén",
    "24": "León",
    "25": "Lleida",
    "26": "La Rioja",
    "27": "Lugo",
    "28": "Madrid",
    "29": "Málaga",
    "30": "Murcia",
    "31": "Navarra",
    "32": "Ourense",
    "33": "Asturias",
    "34": "Palencia",
    "35": "Las Palmas",
    "36": "Pontevedra",
    "37": "Salamanca",
    "38": "Santa Cruz de Tenerife",
    "39": "Cantabria",
    "40": "Segovia",
    "41": "Sevilla",
    "42": "Soria",
    "43": "Tarragona",
    "44": "Teruel",
    "45": "Toledo",
    "46": "Valencia/València",
    "47": "Valladolid",
    "48": "Bizkaia",
    "49": "Zamora",
    "50": "Zaragoza",
    "51": "Ceuta",
    "52": "Melilla",
}


@dataclass(frozen=True)
class ColumnRule:
    column: str
    action: str  # keep | drop | hash | mask | generalise
    option: str | None  # generalise target, or mask kind
    loc: Location


@dataclass
class Policy:
    file: Path
    name: str
    default: str
    columns: dict[str, ColumnRule]
    key_column: str | None = None
    email_column: str | None = None
    phone_column: str | None = None
    loc: Location = field(default_factory=lambda: Location(""))


def load_policy(path: Path) -> Policy:
    """Read and check a policy file; every problem is reported with its file:line."""
    from crmtool.privacy.schemas import POLICY_SCHEMA
    from crmtool.yamlspec import load_yaml, schema_problems

    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError([(doc.loc(), "expected a mapping with a 'columns' block")])
    problems = schema_problems(doc, POLICY_SCHEMA)
    if problems:
        raise ConfigError(problems, "see examples/policy-sales.yaml")
    data = doc.data
    rules: dict[str, ColumnRule] = {}
    for col, raw in data["columns"].items():
        loc = doc.loc(("columns", col))
        if isinstance(raw, dict):
            action = "generalise" if "generalise" in raw else "mask"
            rules[col] = ColumnRule(col, action, str(raw[action]), loc)
        else:
            rules[col] = ColumnRule(col, str(raw), None, loc)
    return Policy(
        path,
        str(data.get("name", path.stem)),
        str(data.get("default", "drop")),
        rules,
        data.get("key_column"),
        data.get("email_column"),
        data.get("phone_column"),
        doc.loc(),
    )


def policy_problems(policy: Policy, columns: list[str]) -> list[tuple[Location, str]]:
    have = set(columns)
    problems = []
    for rule in policy.columns.values():
        if rule.column not in have:
            problems.append((rule.loc, f"column '{rule.column}' is not in the file (columns: {', '.join(columns)})"))
    for opt in ("key_column", "email_column", "phone_column"):
        value = getattr(policy, opt)
        if value and value not in have:
            problems.append((policy.loc, f"{opt} '{value}' is not in the file"))
    return problems


def _category(column: str) -> str | None:
    from crmtool.pii import category_from_name

    return category_from_name(column)


def _mask_sql(col: str, kind: str) -> str:
    v = f"nullif(trim(CAST({col} AS VARCHAR)), '')"
    if kind == "email":
        v = f"lower({v})"
        return (
            f"CASE WHEN contains({v}, '@') THEN left({v}, 1) || '***@' || split_part({v}, '@', -1) "
            f"WHEN {v} IS NOT NULL THEN '***' END"
        )
    if kind == "phone":
        digits = f"regexp_replace({v}, '[^0-9]', '', 'g')"
        return f"CASE WHEN length({digits}) >= 3 THEN '***' || right({digits}, 3) WHEN {v} IS NOT NULL THEN '***' END"
    return f"CASE WHEN {v} IS NOT NULL THEN left({v}, 1) || '***' END"


def _generalise_sql(col: str, to: str, as_of: date) -> str:
    d = date_sql(col)
    if to == "year":
        return f"CAST(year({d}) AS VARCHAR)"
    if to == "decade":
        return f"CAST(year({d}) // 10 * 10 AS VARCHAR) || 's'"
    if to == "age_band":
        age = (
            f"date_diff('year', {d}, DATE '{as_of.isoformat()}') - CASE WHEN strftime({d}, '%m%d') > "
            f"'{as_of.strftime('%m%d')}' THEN 1 ELSE 0 END"
        )
        return (
            f"CASE WHEN {d} IS NULL OR ({age}) < 0 THEN NULL WHEN ({age}) >= 80 THEN '80+' "
            f"ELSE CAST(({age}) // 10 * 10 AS VARCHAR) || '-' || CAST(({age}) // 10 * 10 + 9 AS VARCHAR) END"
        )
    v = f"trim(CAST({col} AS VARCHAR))"
    padded = f"CASE WHEN regexp_full_match({v}, '[0-9]{{4,5}}') THEN lpad({v}, 5, '0') END"
    return f"left({padded}, 2) || '***'"  # postal_prefix (province is a join, see export())


@dataclass
class ExportResult:
    run_id: str
    output: Path
    manifest: Path
    rows: int
    dropped_erased: int
    columns: dict[str, str]  # output column -> action
    dropped_columns: list[str]
    personal_remaining: dict[str, str]  # column -> why it still carries personal data
    key_fingerprint: str

    @property
    def status(self) -> Status:
        """A run that returns has done its work (errors raise)."""
        return Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "output": str(self.output),
            "manifest": str(self.manifest),
            "rows": self.rows,
            "dropped_erased": self.dropped_erased,
            "columns": self.columns,
            "dropped_columns": self.dropped_columns,
            "personal_remaining": self.personal_remaining,
            "key_fingerprint": self.key_fingerprint,
        }


@dataclass
class _ColumnPlan:
    """What the policy makes of the input's columns: the SELECT list, its joins and what was done."""

    selects: list[str] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)
    actions: dict[str, str] = field(default_factory=dict)  # output column -> action
    dropped: list[str] = field(default_factory=list)
    remaining: dict[str, str] = field(default_factory=dict)  # column -> why it still carries personal data


def export(
    ws: Workspace,
    input_path: Path,
    policy_path: Path,
    out: Path,
    *,
    fmt: str | None = None,
    as_of: date | None = None,
    output: OutputOptions | None = None,
) -> ExportResult:
    """Write ``out`` from ``input_path`` following the policy, with ``<out>.manifest.json`` beside it
    (``output``: how a CSV looks, see :class:`crmtool.io.writers.OutputOptions`)."""
    from crmtool.identity.load import load_without_erased
    from crmtool.io.writers import write_query
    from crmtool.pii import detect_pii

    policy = load_policy(policy_path)  # configuration errors before any data is read
    hasher = ws.hasher  # an unreadable key stops us before anything is written
    con = ws.con
    as_of = as_of or datetime.now(UTC).date()
    fmt = fmt or ("parquet" if out.suffix.lower() in (".parquet", ".pq") else "csv")
    run = ws.start_run("export")
    made: list[str] = []
    try:
        # people erased earlier leave in memory, before the rows reach the workspace
        loaded = load_without_erased(
            ws, input_path, STAGING, policy.key_column, policy.email_column, policy.phone_column
        )
        problems = policy_problems(policy, loaded.columns)
        if problems:
            raise ConfigError(problems, "fix the policy or export the missing columns")
        pii = detect_pii(con, STAGING)
        _stage_provinces(ws)
        plan = _plan_columns(ws, policy, loaded.columns, {c: pii[c].category for c in pii}, as_of, made)
        if not plan.selects:
            raise ConfigError([(policy.loc, "the policy drops every column: nothing to export")])
        query = f"SELECT {', '.join(plan.selects)} FROM {STAGING} s {' '.join(plan.joins)} ORDER BY s._row"
        rows = int(con.execute(f"SELECT count(*) FROM {STAGING}").fetchall()[0][0])
        write_query(con, query, out, fmt, options=output)
        ws.register_output(run, "pseudonymised_export", out, rows)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {STAGING}")
        con.execute("DROP TABLE IF EXISTS __provinces_all")
        for t in made:
            con.execute(f"DROP TABLE IF EXISTS {t}")
    result = ExportResult(run.run_id, out, out.with_name(out.name + ".manifest.json"), rows, loaded.erased_dropped,
                          plan.actions, plan.dropped, plan.remaining, hasher.fingerprint)
    input_sha = _write_export_manifest(run, input_path, loaded.rows, policy_path, policy, fmt, as_of, result)
    _record_step(run, input_path, input_sha, loaded.rows, result)
    ws.finish_run(run, Status.PASS, 0, {k: v for k, v in result.as_dict().items() if k != "personal_remaining"})
    return result


def _stage_provinces(ws: Workspace) -> None:
    """The province names by two-digit postal prefix, as the temporary table ``__provinces_all``."""
    import pyarrow as pa

    con = ws.con
    con.register("__provinces_arrow", pa.table({"code": list(PROVINCES), "name": list(PROVINCES.values())}))
    con.execute("CREATE OR REPLACE TEMP TABLE __provinces_all AS SELECT * FROM __provinces_arrow")
    con.unregister("__provinces_arrow")


def _plan_columns(ws: Workspace, policy: Policy, columns: list[str], pii: dict[str, str | None], as_of: date,
                  made: list[str]) -> _ColumnPlan:
    """Apply the policy to each input column (``pii``: detected category by column; ``made``: temp tables)."""
    plan = _ColumnPlan()
    for i, col in enumerate(columns):
        rule = policy.columns.get(col)
        action = rule.action if rule else policy.default
        if action == "drop":
            plan.dropped.append(col)
            continue
        category = pii[col] if col in pii else _category(col)
        expr, action = _column_sql(ws, plan, i, col, action, rule.option if rule else None, category, as_of, made)
        plan.selects.append(f"{expr} AS {ident(col)}")
        plan.actions[col] = action
    return plan


def _column_sql(ws: Workspace, plan: _ColumnPlan, i: int, col: str, action: str, option: str | None,
                category: str | None, as_of: date, made: list[str]) -> tuple[str, str]:
    """The SQL of one kept column and its action word; adds its joins and why it stays personal to ``plan``."""
    from crmtool.identity.keys import value_map

    c = f"s.{ident(col)}"
    if action == "keep":
        if category:
            plan.remaining[col] = f"kept in clear ({category})"
        return c, action
    if action == "hash":
        plan.remaining[col] = "keyed hash (pseudonymised: still personal data for whoever holds the key)"
        if category in ("email", "phone"):
            # the canonical form of :mod:`crmtool.identity`: every spelling of one address or
            # number gets one pseudonym
            vm, m = value_map(ws.con, STAGING, col, str(category))
            made += m
            plan.joins.append(f"LEFT JOIN {vm} p{i} ON p{i}.raw = CAST({c} AS VARCHAR)")
            return f"crm_token(p{i}.value)", action
        return f"crm_token(nullif(trim(CAST({c} AS VARCHAR)), ''))", action
    if action == "mask":
        kind = option or ("email" if category == "email" else "phone" if category == "phone" else "text")
        plan.remaining[col] = f"masked ({kind})"
        return _mask_sql(c, kind), f"mask:{kind}"
    to = option or ("province" if category == "address" else "year")  # generalise
    if to == "province":
        v = f"trim(CAST({c} AS VARCHAR))"
        plan.joins.append(
            f"LEFT JOIN __provinces_all pr{i} ON pr{i}.code = left(CASE WHEN "
            f"regexp_full_match({v}, '[0-9]{{4,5}}') THEN lpad({v}, 5, '0') END, 2)"
        )
        expr = f"pr{i}.name"
    else:
        expr = _generalise_sql(c, to, as_of)
    if category:
        plan.remaining[col] = f"generalised to {to} (quasi-identifier)"
    return expr, f"generalise:{to}"


def _write_export_manifest(run: Run, input_path: Path, rows_in: int, policy_path: Path, policy: Policy, fmt: str,
                           as_of: date, result: ExportResult) -> str:
    """Write ``<out>.manifest.json`` (common keys, policy, columns, key fingerprint); return the input's SHA-256."""
    from crmtool.io.readers import file_sha256
    from crmtool.manifest import common_keys, file_entry, write_manifest

    input_sha = file_sha256(input_path)
    write_manifest(
        result.manifest,
        {
            **common_keys(run, "export", inputs=[{"path": str(input_path), "sha256": input_sha, "rows": rows_in}],
                          outputs=[file_entry(result.output, rows=result.rows, format=fmt)], status=Status.PASS),
            "policy": {"path": str(policy_path), "sha256": file_sha256(policy_path), "name": policy.name},
            "columns": result.columns,
            "dropped_columns": result.dropped_columns,
            "dropped_erased_rows": result.dropped_erased,
            "personal_data_remaining": result.personal_remaining,
            "key_fingerprint": result.key_fingerprint,
            "as_of": as_of.isoformat(),
        },
    )
    return input_sha


def _record_step(run: Run, input_path: Path, sha256: str, rows_in: int, result: ExportResult) -> None:
    """The run's step: its input, and its counts as metrics (``crm_metrics`` step ``export``)."""
    step = run.step
    step.input(input_path, rows_in, sha256=sha256)
    step.metric("rows_in", rows_in)
    step.metric("rows_out", result.rows)
    step.metric("dropped_erased", result.dropped_erased)
    step.metric("columns_out", len(result.columns))
    step.metric("columns_dropped", len(result.dropped_columns))
    actions: dict[str, int] = {}
    for action in result.columns.values():  # keep, hash, mask:email, generalise:year ...
        actions[action.split(":", 1)[0]] = actions.get(action.split(":", 1)[0], 0) + 1
    for action, n in sorted(actions.items()):
        step.metric("columns", n, action)
