"""Bounce exports of email platforms -> ``email_bounces`` (keyed tokens, never addresses in clear).

Supported (``--format``), CSV unless said otherwise; ``auto`` picks by columns / JSON keys:

============  ===============================================================================
mailchimp     audience export of *cleaned* contacts or a campaign bounce report: ``Email Address``
              [+ ``Bounce Type`` hard/soft] [+ ``CLEAN_TIME`` / ``Bounce Date``]; no type = hard
sendgrid      bounces suppression export ``email, created, reason, status`` (status 5.x.x hard,
              4.x.x soft); or Event Webhook JSON lines (``bounce``, ``blocked``, ``deferred``,
              ``dropped`` for bounced addresses, ``spamreport``)
brevo         transactional logs ``email, event, date`` or webhook JSON lines (``hard_bounce``,
              ``soft_bounce``, ``spam``, ``invalid_email``; ``hardBounce`` spellings too)
mailgun       bounces export ``address, code, error, created_at`` or Events API JSON lines
              (``failed`` with severity ``permanent``/``temporary``, ``complained``)
ses           Amazon SES notifications as JSON lines (SNS envelopes or raw): ``Bounce``
              (``Permanent`` = hard, ``Transient``/``Undetermined`` = soft) and ``Complaint``,
              one event per recipient
generic       CSV with an address column (``email``, ``email_address``, ``address``,
              ``recipient``), a type (``type``, ``bounce_type``, ``event``: hard/permanent/5xx,
              soft/transient/4xx, complaint/spam) and a date (``date``, ``occurred_at``,
              ``timestamp``, ``created``)
============  ===============================================================================

Everything is SQL over the loaded file (JSON lines are read by DuckDB as JSON values). Addresses
are stored as ``crm_token`` of their canonical form (:mod:`crmtool.identity`) with its domain; re-importing the same
file adds nothing (events are unique on token, type, time and platform). Events the import does
not use (deliveries, opens) are counted as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmtool.db import scalar
from crmtool.errors import CrmToolError, InputError, UsageError
from crmtool.sqltext import ident
from crmtool.status import Status

if TYPE_CHECKING:
    import duckdb

    from crmtool.workspace import Run, Workspace

PLATFORMS = ("mailchimp", "sendgrid", "brevo", "mailgun", "ses", "generic")
FORMATS = ("auto", *PLATFORMS)
TABLE = "email_bounces"
SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (token VARCHAR, domain VARCHAR, bounce_type VARCHAR, "
    "occurred_at TIMESTAMP, platform VARCHAR, source VARCHAR, imported_run VARCHAR)"
)

_DATE_FORMATS = [
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%Y-%m-%d %H:%M:%S%z",
    "%m/%d/%Y %I:%M %p",
    "%a, %d %b %Y %H:%M:%S %z",
    "%Y/%m/%d %H:%M:%S",
]


def ts_sql(x: str) -> str:
    """SQL: a timestamp (UTC, no zone) from ISO text with or without offset, epoch seconds, or d/m/Y."""
    fmts = ", ".join("'" + f + "'" for f in _DATE_FORMATS)
    v = f"trim(CAST({x} AS VARCHAR))"
    return (
        f"(CASE WHEN regexp_full_match({v}, '[0-9]{{9,11}}(\\.[0-9]+)?') "
        f"THEN make_timestamp(CAST(CAST({v} AS DOUBLE) * 1000000 AS BIGINT)) "
        f"WHEN regexp_matches({v}, '(Z|[+-][0-9][0-9]:?[0-9][0-9])$') "
        f"THEN coalesce(timezone('UTC', try_cast({v} AS TIMESTAMPTZ)), "
        f"timezone('UTC', try_strptime({v}, [{fmts}]))) "
        f"ELSE coalesce(try_cast({v} AS TIMESTAMP), "
        f"CAST(timezone('UTC', try_strptime({v}, [{fmts}])) AS TIMESTAMP)) END)"
    )


def type_sql(x: str) -> str:
    """SQL: hard | soft | complaint | NULL (not a bounce) from a platform's type words or SMTP codes."""
    v = f"lower(trim(CAST({x} AS VARCHAR)))"
    return (
        f"(CASE WHEN {v} IN ('hard', 'permanent', 'hard_bounce', 'hardbounce', 'hard bounce', 'bounce', "
        f"'invalid_email', 'invalid', 'cleaned', 'failed_permanent') OR regexp_matches({v}, '^5[0-9.]*$') "
        f"THEN 'hard' "
        f"WHEN {v} IN ('soft', 'transient', 'undetermined', 'soft_bounce', 'softbounce', 'soft bounce', "
        f"'blocked', 'deferred', 'temporary', 'failed_temporary') OR regexp_matches({v}, '^4[0-9.]*$') "
        f"THEN 'soft' "
        f"WHEN {v} IN ('complaint', 'spam', 'spamreport', 'complained', 'abuse') THEN 'complaint' END)"
    )


def _when(column: str | None) -> str:
    return ts_sql(column) if column else "NULL"


def _cols(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """lower-cased name -> actual name."""
    return {
        r[0].lower().strip(): r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall() if r[0] != "_row"
    }



def _pick(cols: dict[str, str], *names: str) -> str | None:
    for n in names:
        if n in cols:
            return ident(cols[n])
    return None


def _csv_platform(cols: dict[str, str]) -> str:
    if "email address" in cols:
        return "mailchimp"
    if {"address", "code", "error"} <= set(cols):
        return "mailgun"
    if {"email", "created"} <= set(cols) and ("status" in cols or "reason" in cols):
        return "sendgrid"
    if {"email", "event", "date"} <= set(cols):
        return "brevo"
    return "generic"


def _csv_events(con: duckdb.DuckDBPyConnection, table: str, platform: str) -> str:
    """SQL ``(email, kind, occurred)`` over a loaded CSV of ``platform``."""
    cols = _cols(con, table)
    need = {
        "mailchimp": ("email address",),
        "mailgun": ("address",),
        "sendgrid": ("email",),
        "brevo": ("email", "event"),
    }
    missing = [c for c in need.get(platform, ()) if c not in cols]
    if missing:
        raise InputError(
            f"not a {platform} bounce export: column(s) {', '.join(missing)} missing "
            f"(columns: {', '.join(cols.values())})",
            "check --format, or use --format generic",
        )
    if platform == "mailchimp":
        email = ident(cols["email address"])
        mc_kind = _pick(cols, "bounce type", "bounce_type", "type")
        when = _pick(cols, "clean_time", "bounce date", "bounce_date", "timestamp", "last_changed")
        return (
            f"SELECT {email} AS email, {type_sql(mc_kind) if mc_kind else repr('hard')} AS kind, "
            f'{ts_sql(when) if when else "NULL"} AS occurred FROM "{table}"'
        )
    if platform == "sendgrid":
        status = _pick(cols, "status")
        when = _pick(cols, "created", "created_at")
        kind = f"coalesce({type_sql(status)}, 'hard')" if status else "'hard'"
        return (
            f"SELECT {ident(cols['email'])} AS email, {kind} AS kind, {_when(when)} AS occurred "
            f'FROM "{table}"'
        )
    if platform == "brevo":
        when = _pick(cols, "date", "ts", "ts_event")
        return (
            f"SELECT {ident(cols['email'])} AS email, {type_sql(ident(cols['event']))} AS kind, "
            f'{ts_sql(when) if when else "NULL"} AS occurred FROM "{table}"'
        )
    if platform == "mailgun":
        code = _pick(cols, "code")
        when = _pick(cols, "created_at", "created", "timestamp")
        kind = f"coalesce({type_sql(code)}, 'hard')" if code else "'hard'"
        return (
            f"SELECT {ident(cols['address'])} AS email, {kind} AS kind, {_when(when)} AS occurred "
            f'FROM "{table}"'
        )
    if platform == "ses":
        raise UsageError("ses exports are JSON lines (SNS notifications), not CSV")
    g_email = _pick(cols, "email", "email_address", "email address", "address", "recipient", "correo")
    g_kind = _pick(cols, "type", "bounce_type", "bounce type", "event", "kind", "status", "tipo")
    g_when = _pick(cols, "date", "occurred_at", "timestamp", "created", "created_at", "time", "fecha")
    if g_email is None or g_kind is None:
        raise InputError(
            "generic bounce CSV needs an address column (email, address, recipient) and a type "
            f"column (type, bounce_type, event); found: {', '.join(cols.values())}"
        )
    return (
        f"SELECT {g_email} AS email, {type_sql(g_kind)} AS kind, {_when(g_when)} AS occurred "
        f'FROM "{table}"'
    )


def _s(path: str) -> str:
    """SQL: the text at ``$.path`` of the JSON event ``j``."""
    return f"json_extract_string(j, '$.{path}')"


def _json_platform(con: duckdb.DuckDBPyConnection, table: str) -> str:
    brevo_events = "('hard_bounce', 'soft_bounce', 'hardbounce', 'softbounce', 'spam', 'invalid_email')"
    row = con.execute(f"""
        SELECT count(*) FILTER (WHERE {_s('notificationType')} IS NOT NULL OR {_s('eventType')} IS NOT NULL),
               count(*) FILTER (WHERE {_s('recipient')} IS NOT NULL AND {_s('event')} IS NOT NULL),
               count(*) FILTER (WHERE lower({_s('event')}) IN {brevo_events}),
               count(*) FILTER (WHERE {_s('email')} IS NOT NULL AND {_s('event')} IS NOT NULL)
        FROM "{table}" """).fetchall()[0]
    ses, mailgun, brevo, sendgrid = (int(x) for x in row)
    if ses:
        return "ses"
    if mailgun:
        return "mailgun"
    if brevo:
        return "brevo"
    if sendgrid:
        return "sendgrid"
    raise InputError("cannot tell which platform wrote these JSON events", "give --format ses|sendgrid|brevo|mailgun")


def _json_events(table: str, platform: str) -> str:
    t = f'"{table}"'
    if platform == "ses":
        kind_word = f"lower(coalesce({_s('notificationType')}, {_s('eventType')}))"
        kinds = (f"CASE WHEN {kind_word} = 'bounce' THEN "
                 f"CASE WHEN {_s('bounce.bounceType')} = 'Permanent' THEN 'hard' ELSE 'soft' END "
                 f"WHEN {kind_word} = 'complaint' THEN 'complaint' END")
        rcpt = ("coalesce(CAST(json_extract(j, '$.bounce.bouncedRecipients') AS JSON[]), "
                "CAST(json_extract(j, '$.complaint.complainedRecipients') AS JSON[]), [NULL::JSON])")
        when = f"coalesce({_s('bounce.timestamp')}, {_s('complaint.timestamp')}, {_s('mail.timestamp')})"
        unwrap = f"CASE WHEN {_s('Type')} = 'Notification' THEN CAST({_s('Message')} AS JSON) ELSE j END"
        return (f"SELECT json_extract_string(r, '$.emailAddress') AS email, kind, {ts_sql('w')} AS occurred "
                f"FROM (SELECT {kinds} AS kind, unnest({rcpt}) AS r, {when} AS w "
                f"FROM (SELECT {unwrap} AS j FROM {t}))")
    if platform == "mailgun":
        kind = (f"CASE WHEN {_s('event')} = 'failed' THEN CASE WHEN {_s('severity')} = 'permanent' THEN 'hard' "
                f"ELSE 'soft' END WHEN {_s('event')} = 'complained' THEN 'complaint' END")
        return f"SELECT {_s('recipient')} AS email, {kind} AS kind, {ts_sql(_s('timestamp'))} AS occurred FROM {t}"
    if platform == "brevo":
        when = f"coalesce({_s('date')}, {_s('ts_event')}, {_s('ts')})"
        return f"SELECT {_s('email')} AS email, {type_sql(_s('event'))} AS kind, {ts_sql(when)} AS occurred FROM {t}"
    if platform == "sendgrid":
        event = _s("event")
        kind = (f"CASE WHEN {event} = 'bounce' THEN CASE WHEN {_s('type')} = 'blocked' OR "
                f"starts_with(coalesce({_s('status')}, ''), '4') THEN 'soft' ELSE 'hard' END "
                f"WHEN {event} = 'deferred' THEN 'soft' "
                f"WHEN {event} = 'dropped' AND lower(coalesce({_s('reason')}, '')) LIKE '%bounce%' THEN 'hard' "
                f"WHEN {event} = 'spamreport' THEN 'complaint' END")
        return f"SELECT {_s('email')} AS email, {kind} AS kind, {ts_sql(_s('timestamp'))} AS occurred FROM {t}"
    raise UsageError(f"{platform} exports are CSV files, not JSON events")


def _is_json(path: Path) -> bool:
    if path.suffix.lower() in (".json", ".jsonl", ".ndjson"):
        return True
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] in (b"{", b"[")


@dataclass
class BounceImport:
    """What an import did (counts only: no addresses)."""

    platform: str
    rows: int
    imported: int
    duplicates: int
    skipped: int
    undated: int
    by_type: dict[str, int]
    run_id: str

    @property
    def status(self) -> Status:
        """A run that returns has done its work (errors raise)."""
        return Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "rows": self.rows,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "undated": self.undated,
            "by_type": dict(sorted(self.by_type.items())),
            "run_id": self.run_id,
        }


def import_bounces(
    ws: Workspace, path: Path, platform: str = "auto", *, source: str | None = None
) -> BounceImport:
    """Read a bounce export into ``email_bounces``; returns counts. Records a run ``bounces import``."""
    from crmtool.emails.classify import normalise_email_sql
    from crmtool.identity.canonical import register_sql as register_canonical_sql
    from crmtool.io.readers import load_file

    if platform not in FORMATS:
        raise UsageError(f"unknown bounce format {platform!r}", f"use one of {', '.join(FORMATS)}")
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir() or path.stat().st_size == 0:
        raise InputError(f"{path}: not a bounce export (folder or empty file)")
    con = ws.con
    ws.hasher  # noqa: B018 - registers crm_token
    run = ws.start_run("bounces import")
    import duckdb

    from crmtool.io.gate import readable

    raw = "__bounce_raw"
    try:
        if _is_json(path):
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {raw} AS SELECT CAST(json AS JSON) AS j "
                f"FROM read_json_objects(?, format = 'auto')",
                [readable(con, path)],
            )
            detected = _json_platform(con, raw) if platform == "auto" else platform
            events = _json_events(raw, detected)
        else:
            load_file(con, path, raw)
            detected = _csv_platform(_cols(con, raw)) if platform == "auto" else platform
            events = _csv_events(con, raw, detected)
        rows = int(scalar(con, f"SELECT count(*) FROM {raw}") or 0)
        con.execute(f"CREATE OR REPLACE TEMP TABLE __bounce_ev AS SELECT * FROM ({events})")
    except duckdb.Error as exc:
        ws.finish_run(run, "error", 2, {"error": "unreadable"})
        raise InputError(
            f"{path}: cannot read as a bounce export ({str(exc).splitlines()[0][:160]})",
            "check the file and --format",
        ) from None
    except CrmToolError as exc:
        ws.finish_run(run, "error", int(exc.exit_code), {"error": exc.__class__.__name__})
        raise
    con.execute(SCHEMA)
    register_canonical_sql(con)
    # the address's canonical form (crmtool.identity): a bounce on j.doe+x@googlemail.com is one on jdoe@gmail.com
    norm = f"crm_email_canon({normalise_email_sql('email')})"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE __bounce_new AS
        SELECT DISTINCT crm_token(n) AS token, regexp_extract(n, '@([^@]*)$', 1) AS domain,
               kind AS bounce_type,
               occurred AS occurred_at, ? AS platform, ? AS source, ? AS imported_run
        FROM (SELECT {norm} AS n, kind, occurred FROM __bounce_ev
              WHERE email IS NOT NULL AND kind IS NOT NULL)
        WHERE n LIKE '%@%'""",
        [detected, source or path.name, run.run_id],
    )
    kept = int(scalar(con, "SELECT count(*) FROM __bounce_new") or 0)
    con.execute(f"""
        DELETE FROM __bounce_new n WHERE EXISTS (SELECT 1 FROM {TABLE} b WHERE b.token = n.token
            AND b.bounce_type = n.bounce_type AND b.platform = n.platform
            AND b.occurred_at IS NOT DISTINCT FROM n.occurred_at)""")
    new = int(scalar(con, "SELECT count(*) FROM __bounce_new") or 0)
    con.execute(f"INSERT INTO {TABLE} SELECT * FROM __bounce_new")
    by_type = {
        k: int(n)
        for k, n in con.execute("SELECT bounce_type, count(*) FROM __bounce_new GROUP BY 1").fetchall()
    }
    undated = int(scalar(con, "SELECT count(*) FROM __bounce_new WHERE occurred_at IS NULL") or 0)
    skipped = int(scalar(con, "SELECT count(*) FROM __bounce_ev WHERE email IS NULL OR kind IS NULL") or 0)
    for t in (raw, "__bounce_ev", "__bounce_new"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    result = BounceImport(detected, rows, new, kept - new, skipped, undated, by_type, run.run_id)
    _record_step(run, path, result)
    ws.finish_run(run, "ok", 0, result.as_dict())
    return result


def _record_step(run: Run, path: Path, result: BounceImport) -> None:
    """The run's step: the export read, and its counts as metrics (``crm_metrics`` step
    ``bounces import``): rows in, events imported, duplicates and skipped rows, bounces per type."""
    step = run.step
    step.input(path, result.rows)
    step.metric("rows_in", result.rows)
    step.metric("imported", result.imported)
    step.metric("duplicates", result.duplicates)
    step.metric("skipped", result.skipped)
    step.metric("undated", result.undated)
    for kind, n in sorted(result.by_type.items()):
        step.metric("bounces", n, kind)


def _has_macro(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(scalar(con, "SELECT count(*) FROM duckdb_functions() WHERE function_name = ?", [name]))


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(scalar(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]))


def history_table(
    con: duckdb.DuckDBPyConnection,
    addr_table: str,
    *,
    soft_bounces: int = 3,
    window_days: int = 30,
    prefix: str = "__em",
) -> str | None:
    """Temp table ``(value, hard, soft_repeated, suppressed)`` for the addresses of ``addr_table``.

    ``hard``: a hard bounce on record; ``soft_repeated``: ``soft_bounces`` soft bounces within any
    ``window_days``-day span; ``suppressed``: a complaint on record, or an ``email`` entry in
    ``privacy_suppressions``. ``None`` when there is no history or no ``crm_token`` macro.
    """
    from crmtool.emails.classify import normalise_email_sql

    bounces = _has_table(con, TABLE) and bool(scalar(con, f"SELECT count(*) > 0 FROM {TABLE}"))
    supp = _has_table(con, "privacy_suppressions") and bool(
        scalar(con, "SELECT count(*) > 0 FROM privacy_suppressions WHERE channel = 'email'")
    )
    if not (bounces or supp) or not _has_macro(con, "crm_token"):
        return None
    from crmtool.identity.canonical import register_sql as register_canonical_sql

    register_canonical_sql(con)
    # matched as written and in canonical form (crmtool.identity): registers hold either
    norm = normalise_email_sql("value")
    dom_filter = "true" if supp else f"regexp_extract(c, '@([^@]*)$', 1) IN (SELECT domain FROM {TABLE})"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {prefix}_tok AS
        SELECT DISTINCT value, crm_token(t) AS token FROM (
            SELECT value, c, unnest(CASE WHEN c = n THEN [n] ELSE [n, c] END) AS t
            FROM (SELECT value, n, crm_email_canon(n) AS c FROM (SELECT value, {norm} AS n FROM {addr_table})))
        WHERE {dom_filter}""")
    n = max(1, int(soft_bounces))
    bounce_part = (
        "SELECT NULL::VARCHAR AS token, false AS hard, false AS soft_repeated, false AS complaint WHERE false"
    )
    if bounces:
        bounce_part = f"""
            SELECT token, bool_or(bounce_type = 'hard') AS hard,
                   bool_or(bounce_type = 'soft' AND prev IS NOT NULL
                           AND occurred_at - prev <= INTERVAL {int(window_days)} DAY) AS soft_repeated,
                   bool_or(bounce_type = 'complaint') AS complaint
            FROM (SELECT token, bounce_type, occurred_at,
                         CASE WHEN bounce_type = 'soft' THEN lag(occurred_at, {n - 1}) OVER
                              (PARTITION BY token, bounce_type ORDER BY occurred_at) END AS prev
                  FROM {TABLE} WHERE token IN (SELECT token FROM {prefix}_tok))
            GROUP BY token"""
    supp_part = (
        "SELECT DISTINCT token FROM privacy_suppressions WHERE channel = 'email'"
        if supp
        else "SELECT NULL::VARCHAR AS token WHERE false"
    )
    out = f"{prefix}_hist"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {out} AS
        SELECT t.value, bool_or(coalesce(b.hard, false)) AS hard,
               bool_or(coalesce(b.soft_repeated, false)) AS soft_repeated,
               bool_or(coalesce(b.complaint, false) OR s.token IS NOT NULL) AS suppressed
        FROM {prefix}_tok t LEFT JOIN ({bounce_part}) b ON b.token = t.token
        LEFT JOIN ({supp_part}) s ON s.token = t.token GROUP BY t.value""")
    return out
