"""Who may not receive anything: erased, suppressed, bounced, no email, no consent (one reason each).

Reasons, first that applies (the names and order of :mod:`crmtool.privacy.mailable`): ``erased``
(a token of the customer's id, email or phone is in ``privacy_erasures``), ``suppressed`` (in
``privacy_suppressions``: on the id, the email *or the phone*, stricter than mailability because a
send list also feeds phone-based ad audiences), ``bounced`` (hard bounce or complaint in
``email_bounces``), ``no_email`` (blank email), ``consent_denied`` and ``consent_unknown`` (the
consent column, normalised by the privacy feature's ``normalise_consent_sql``: unknown never
counts as granted). Those tables exist only once the privacy and emails features have been used;
when absent, that check has nothing to match and the run says so in its notes.

Tokens follow the cross-feature contract: ``crm_token`` of the normalised value (email by
:func:`crmtool.normalise.normalise_email`; phone by :func:`crmtool.normalise.phone_e164` with the
configured region, digits only when invalid; id trimmed). Normalisation runs in Python once per
distinct value.
"""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING

from crmtool.segments.conditions import ident

if TYPE_CHECKING:
    from crmtool.segments.features import CustomerColumns
    from crmtool.segments.spec import SegmentsSpec
    from crmtool.workspace import Workspace

REASONS = ("erased", "suppressed", "bounced", "no_email", "consent_denied", "consent_unknown")
GRANTED = (
    "si",
    "s",
    "yes",
    "y",
    "1",
    "true",
    "t",
    "granted",
    "opt-in",
    "optin",
    "opt in",
    "x",
    "accepted",
    "consent",
    "ok",
    "1.0",
)
DENIED = (
    "no",
    "n",
    "0",
    "false",
    "f",
    "denied",
    "opt-out",
    "optout",
    "opt out",
    "revoked",
    "withdrawn",
    "0.0",
)


def local_consent_sql(column_sql: str) -> str:
    """'granted' | 'denied' | 'unknown' from common spellings (Sí, yes, 1, true, opt-in ...)."""
    v = f"lower(strip_accents(trim(CAST({column_sql} AS VARCHAR))))"
    granted = ", ".join(f"'{x}'" for x in GRANTED)
    denied = ", ".join(f"'{x}'" for x in DENIED)
    return (
        f"CASE WHEN {v} IN ({granted}) THEN 'granted' WHEN {v} IN ({denied}) THEN 'denied' ELSE 'unknown' END"
    )


def consent_sql(column_sql: str) -> str:
    """The privacy feature's normaliser when installed (the shared contract), else the local one."""
    try:
        module = importlib.import_module("crmtool.privacy.consent")
        return str(module.normalise_consent_sql(column_sql))
    except (ImportError, AttributeError):
        return local_consent_sql(column_sql)


def _phone_token_value(value: str, region: str) -> str:
    from crmtool.normalise import phone_e164

    return phone_e164(value, region) or re.sub(r"\D", "", value)


def _normalised_map(ws: Workspace, column: str, fn: object, name: str) -> None:
    import pyarrow as pa

    from crmtool.db import fetch_arrow

    raw = (
        fetch_arrow(
            ws.con,
            f"SELECT DISTINCT CAST({ident(column)} AS VARCHAR) AS v FROM seg_customers "
            f"WHERE {ident(column)} IS NOT NULL",
        )
        .column("v")
        .to_pylist()
    )
    norm = [fn(v) for v in raw]  # type: ignore[operator]  # once per distinct value
    ws.con.register(f"__{name}", pa.table({"v": raw, "n": norm}))
    ws.con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT v, crm_token(n) AS token FROM __{name} "
        f"WHERE n IS NOT NULL AND n <> ''"
    )
    ws.con.unregister(f"__{name}")


def build_exclusions(ws: Workspace, spec: SegmentsSpec, cc: CustomerColumns) -> list[str]:
    """Create ``seg_exclusions(customer_id, reason)``; returns notes on what was (not) checked."""
    con = ws.con
    notes: list[str] = []
    have = {t: ws.table_exists(t) for t in ("privacy_suppressions", "privacy_erasures", "email_bounces")}
    cases: list[str] = []
    joins = ""
    if any(have.values()):
        from crmtool.normalise import normalise_email

        ws.hasher  # noqa: B018 - registers crm_token()
        con.execute(
            "CREATE OR REPLACE TEMP TABLE seg_tok_id AS SELECT customer_id, crm_token(customer_id) AS token "
            "FROM seg_customers"
        )
        parts = ["SELECT customer_id, 'id' AS channel, token FROM seg_tok_id"]
        if cc.email:
            _normalised_map(ws, cc.email, normalise_email, "seg_tok_email")
            parts.append(
                f"SELECT c.customer_id, 'email', t.token FROM seg_customers c JOIN seg_tok_email t "
                f"ON t.v = CAST(c.{ident(cc.email)} AS VARCHAR)"
            )
        if cc.phone:
            region = spec.customers.phone_region
            _normalised_map(ws, cc.phone, lambda v: _phone_token_value(v, region), "seg_tok_phone")
            parts.append(
                f"SELECT c.customer_id, 'phone', t.token FROM seg_customers c JOIN seg_tok_phone t "
                f"ON t.v = CAST(c.{ident(cc.phone)} AS VARCHAR)"
            )
        con.execute("CREATE OR REPLACE TEMP TABLE seg_tokens AS " + " UNION ALL ".join(parts))
        if have["privacy_erasures"]:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE seg_erased AS SELECT DISTINCT t.customer_id FROM seg_tokens t "
                "JOIN privacy_erasures e ON e.token = t.token"
            )
            joins += " LEFT JOIN seg_erased er ON er.customer_id = c.customer_id"
            cases.append("WHEN er.customer_id IS NOT NULL THEN 'erased'")
        else:
            notes.append("no erasure register (privacy_erasures) in the workspace")
        if have["privacy_suppressions"]:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE seg_suppressed AS SELECT DISTINCT t.customer_id FROM seg_tokens t "
                "JOIN privacy_suppressions s ON s.token = t.token AND s.channel = t.channel"
            )
            joins += " LEFT JOIN seg_suppressed su ON su.customer_id = c.customer_id"
            cases.append("WHEN su.customer_id IS NOT NULL THEN 'suppressed'")
        else:
            notes.append("no suppression list (privacy_suppressions) in the workspace")
        if have["email_bounces"]:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE seg_bounced AS SELECT DISTINCT t.customer_id FROM seg_tokens t "
                "JOIN email_bounces b ON b.token = t.token AND t.channel = 'email' "
                "AND b.bounce_type IN ('hard', 'complaint')"
            )
            joins += " LEFT JOIN seg_bounced bo ON bo.customer_id = c.customer_id"
            cases.append("WHEN bo.customer_id IS NOT NULL THEN 'bounced'")
    else:
        notes.append("no suppression or erasure registers in the workspace: nothing to match")
    if cc.email:
        cases.append(f"WHEN nullif(trim(CAST(c.{ident(cc.email)} AS VARCHAR)), '') IS NULL THEN 'no_email'")
    if cc.consent:
        consent = consent_sql("c." + ident(cc.consent))
        cases.append(f"WHEN {consent} = 'denied' THEN 'consent_denied'")
        cases.append(f"WHEN {consent} <> 'granted' THEN 'consent_unknown'")
    else:
        notes.append("consent not checked (inputs.customers.consent is null)")
    reason = f"CASE {' '.join(cases)} END" if cases else "NULL::VARCHAR"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE seg_exclusions AS SELECT c.customer_id, {reason} AS reason "
        f"FROM seg_customers c{joins}"
    )
    return notes
