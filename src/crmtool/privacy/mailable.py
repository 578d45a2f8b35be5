"""Who may be emailed: email consent granted AND not suppressed AND not erased AND not hard-bounced.

:func:`mailable_table` builds a temp table ``(<row column>, mailable, not_mailable_reason)`` for a
customer table; :func:`add_mailable_column` writes the flag into the table itself. The first
reason that applies wins, in this order (segments use the same names and order): ``erased``,
``suppressed`` (an ``email`` or ``id`` suppression of any kind), ``bounced`` (hard bounce or
complaint in ``email_bounces`` when that table exists), ``no_email``, ``consent_denied``,
``consent_unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crmtool.kinds.base import ident
from crmtool.privacy.consent import ChannelConsent, normalise_consent_sql
from crmtool.privacy.erase import erased_from_tokens, erasure_kinds
from crmtool.privacy.identity import (
    EMAIL,
    ID,
    PHONE,
    drop_maps,
    email_norm,
    ensure_tables,
    id_sql,
    phone_key_sql,
    table_columns,
)

if TYPE_CHECKING:
    from crmtool.rulefile import RuleSet
    from crmtool.workspace import Workspace

REASONS = ("erased", "suppressed", "bounced", "no_email", "consent_denied", "consent_unknown")


@dataclass
class MailableSummary:
    table: str  # the temp table with the flags
    rows: int
    mailable: int
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "mailable": self.mailable, "not_mailable": self.reasons}


def mailable_table(
    ws: Workspace,
    table: str,
    *,
    email_column: str,
    consent: ChannelConsent | None = None,
    consent_column: str | None = None,
    key_column: str | None = None,
    phone_column: str | None = None,
    row_column: str = "_row",
    out_table: str | None = None,
) -> MailableSummary:
    """Flag every row of ``table``; ``consent`` (rules) or ``consent_column`` gives the email consent.

    Without any consent column nobody is mailable: unknown consent never counts as granted.
    """
    con = ws.con
    ensure_tables(con)
    ws.hasher  # noqa: B018 - registers crm_token()
    out = out_table or f"__mailable_{table}"
    names = [c for c, _t in table_columns(con, table)]
    row_expr = f"t.{ident(row_column)}" if row_column in names else "t.rowid"
    if consent is not None:
        state = consent.state_sql("t")
    elif consent_column:
        state = normalise_consent_sql(f"t.{ident(consent_column)}")
    else:
        state = "'unknown'"
    kinds = erasure_kinds(ws)
    id_sup = bool(con.execute("SELECT count(*) FROM privacy_suppressions WHERE channel = 'id'").fetchall()[0][0])
    want_id = bool(key_column) and (id_sup or ID in kinds)
    want_phone = bool(phone_column) and PHONE in kinds
    base, tok = f"__mailable_base_{table}", f"__mailable_tok_{table}"
    email_expr, join = email_norm(con, table, email_column, "t")
    extra = f", {id_sql(f't.{ident(key_column)}')} AS id" if want_id and key_column else ""
    if want_phone and phone_column:
        extra += f", CAST(t.{ident(phone_column)} AS VARCHAR) AS ph, {phone_key_sql(f't.{ident(phone_column)}')} AS pk"
    try:
        # one scan for normalised email and consent, one for the keyed hashes
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {ident(base)} AS
            SELECT t.rowid AS rid, {row_expr} AS r, nullif({email_expr}, '') AS em, {state} AS cs{extra}
            FROM {ident(table)} t {join}""")
        tok_cols = ["rid", "crm_token(em) AS et"]
        if want_id:
            tok_cols.append("crm_token(id) AS it")
        if want_phone:
            tok_cols += ["ph", "crm_token(pk) AS pkt"]
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {ident(tok)} AS SELECT {", ".join(tok_cols)}
            FROM {ident(base)}""")
        bounced = "false"
        if ws.table_exists("email_bounces"):
            bounced = "k.et IN (SELECT token FROM email_bounces WHERE bounce_type IN ('hard', 'complaint'))"
        erased = erased_from_tokens(ws, tok, kinds, has_id=want_id, has_email=True, has_phone=want_phone)
        erased_join = f"LEFT JOIN (SELECT DISTINCT rid FROM ({erased})) er ON er.rid = b.rid" if erased else ""
        erased_flag = "er.rid IS NOT NULL" if erased else "false"
        id_suppressed = (
            f"OR k.it IN (SELECT token FROM privacy_suppressions WHERE channel = '{ID}')" if want_id and id_sup else ""
        )
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {ident(out)} AS
            SELECT r AS {ident(row_column)}, reason IS NULL AS mailable, reason AS not_mailable_reason FROM (
                SELECT b.r, CASE
                    WHEN {erased_flag} THEN 'erased'
                    WHEN k.et IN (SELECT token FROM privacy_suppressions WHERE channel = '{EMAIL}') {id_suppressed}
                    THEN 'suppressed'
                    WHEN {bounced} THEN 'bounced'
                    WHEN b.em IS NULL OR NOT contains(b.em, '@') THEN 'no_email'
                    WHEN b.cs = 'denied' THEN 'consent_denied'
                    WHEN b.cs <> 'granted' THEN 'consent_unknown'
                END AS reason
                FROM {ident(base)} b LEFT JOIN {ident(tok)} k ON k.rid = b.rid {erased_join})
            ORDER BY 1""")
    finally:
        con.execute(f"DROP TABLE IF EXISTS {ident(tok)}")
        con.execute(f"DROP TABLE IF EXISTS {ident(base)}")
        drop_maps(con)
    counts = dict(
        con.execute(
            f"SELECT coalesce(not_mailable_reason, 'mailable'), count(*) FROM {ident(out)} GROUP BY ALL ORDER BY 1"
        ).fetchall()
    )
    rows = sum(int(v) for v in counts.values())
    mailable = int(counts.pop("mailable", 0))
    return MailableSummary(out, rows, mailable, {k: int(counts.get(k, 0)) for k in REASONS})


def add_mailable_column(ws: Workspace, table: str, *, column: str = "mailable", **kwargs: Any) -> MailableSummary:
    """Add (or refresh) a BOOLEAN ``column`` in ``table`` from :func:`mailable_table` (same keywords)."""
    con = ws.con
    summary = mailable_table(ws, table, row_column="_row", **kwargs)
    names = [c for c, _t in table_columns(con, table)]
    if "_row" not in names:
        raise ValueError(f"{table} has no _row column")
    if column not in names:
        con.execute(f"ALTER TABLE {ident(table)} ADD COLUMN {ident(column)} BOOLEAN")
    con.execute(
        f"UPDATE {ident(table)} SET {ident(column)} = m.mailable FROM {ident(summary.table)} m "
        f"WHERE {ident(table)}._row = m._row"
    )
    return summary


def mailable_for_ruleset(
    ws: Workspace, table: str, ruleset: RuleSet, *, out_table: str | None = None, row_column: str = "_row"
) -> MailableSummary | None:
    """:func:`mailable_table` with everything taken from the rules and the column names: email consent
    from the ``consent`` section, the record key from ``dataset.key``, email and phone columns by name.
    ``None`` when the table has no email column (then nobody is mailable)."""
    from crmtool.privacy.consent import parse_consent
    from crmtool.privacy.identity import detect_identity_columns

    cols = detect_identity_columns(ws.con, table, ruleset.dataset.key)
    if not cols.emails:
        return None
    return mailable_table(
        ws,
        table,
        email_column=cols.emails[0],
        consent=parse_consent(ruleset).get("email"),
        key_column=cols.id,
        phone_column=cols.phones[0] if cols.phones else None,
        row_column=row_column,
        out_table=out_table,
    )
