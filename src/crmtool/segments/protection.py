"""Who may not receive anything: erased, suppressed, bounced, no email, no consent (one reason each).

Reasons, first that applies (the names and order of :mod:`crmtool.privacy.mailable`): ``erased``
(a token of the customer's id, email, phone or NIF, on any of the input's rows of that id, is in
``privacy_erasures``), ``suppressed`` (in ``privacy_suppressions``: on the id, the email, the NIF
*or the phone*, stricter than mailability because a send list also feeds phone-based ad
audiences), ``bounced`` (hard bounce or complaint in ``email_bounces``), ``no_email`` (blank, or
no one usable address: ``mailable``'s test, without its ``@`` check), ``consent_denied`` and
``consent_unknown`` (the consent column, normalised by the privacy feature's
``normalise_consent_sql``: unknown never counts as granted). Those tables exist only once the
privacy and emails features have been used; when absent, that check has nothing to match and the
run says so in its notes.

Identifiers are matched through :mod:`crmtool.identity` (canonical forms, keyed tokens, the dedupe
cluster as the person): a reason found on one record of a person applies to all of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmtool.sqltext import ident

if TYPE_CHECKING:
    from crmtool.segments.features import CustomerColumns
    from crmtool.segments.model import SegmentsSpec
    from crmtool.workspace import Workspace

REASONS = ("erased", "suppressed", "bounced", "no_email", "consent_denied", "consent_unknown")
def consent_sql(column_sql: str) -> str:
    """Consent as granted / denied / unknown, by the privacy feature's one normaliser."""
    from crmtool.privacy.consent import normalise_consent_sql

    return str(normalise_consent_sql(column_sql))


def customer_consent_sql(ws: Workspace, consent: str) -> tuple[str, str]:
    """SQL of the consent state of customer ``c`` in ``seg_customers``, and the join it needs: the most
    restrictive of every row of the id when the id repeats in the export (``seg_id_consent``), else
    the row's own."""
    if ws.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'seg_id_consent' "
                      "AND temporary").fetchall()[0][0]:
        return ("coalesce(ic.consent, " + consent_sql("c." + ident(consent)) + ")",
                " LEFT JOIN seg_id_consent ic ON ic.pid = c.customer_id")
    return consent_sql("c." + ident(consent)), ""


def build_exclusions(ws: Workspace, spec: SegmentsSpec, cc: CustomerColumns) -> list[str]:
    """Create ``seg_exclusions(customer_id, reason)``; returns notes on what was (not) checked.

    Matching goes through :mod:`crmtool.identity`: an erasure, a suppression or a hard bounce on any
    identifier of a customer, in any canonical spelling, or on any record of their dedupe cluster,
    excludes every customer of that person; consent is the most restrictive of the person's records.
    """
    from crmtool.identity.keys import IdentityColumns, cluster_map_sql, person_keys
    from crmtool.identity.registers import person_consent_sql, person_flags_of_lines, register_sql
    from crmtool.privacy.mailable import no_email_sql

    con = ws.con
    notes: list[str] = []
    have = register_sql(ws) if any(
        ws.table_exists(t) for t in ("privacy_suppressions", "privacy_erasures", "email_bounces")
    ) else {}
    for flag, table in (("erased", "erasure register (privacy_erasures)"),
                        ("suppressed", "suppression list (privacy_suppressions)")):
        if have and flag not in have:
            notes.append(f"no {table} in the workspace")
    if not have and cluster_map_sql(con) is None:
        _exclusions_of_single_records(ws, cc, notes)
        notes.append("no suppression or erasure registers in the workspace: nothing to match")
        return notes
    # ``keys.rows``: each customer's person (id and dedupe cluster), for consent and the flags; the
    # identifiers matched against the registers are those of every row of the input (below)
    keys = person_keys(con, "seg_customers", IdentityColumns("customer_id"), name="seg_idk",
                       region=spec.customers.phone_region)
    try:
        flags = person_flags_of_lines(ws, _input_lines(ws, cc, spec.customers.phone_region, keys.made),
                                      keys.rows, keys.made) if have else None
        cases: list[str] = []
        if flags:
            cases += ["WHEN f.erased THEN 'erased'", "WHEN f.suppressed THEN 'suppressed'",
                      "WHEN f.bounced THEN 'bounced'"]
        if cc.email:
            cases.append(f"WHEN {no_email_sql('c.' + ident(cc.email), need_at=False)} THEN 'no_email'")
        consent_join = ""
        if cc.consent:
            state, by_id = customer_consent_sql(ws, cc.consent)
            con.execute(f"""CREATE OR REPLACE TEMP TABLE seg_person_consent AS {person_consent_sql(
                f"SELECT k.pid, {state} AS cs FROM seg_customers c{by_id} JOIN {keys.rows} k ON k.rid = c.rowid")}""")
            consent_join = " LEFT JOIN seg_person_consent pc ON pc.pid = k.pid"
            cases.append("WHEN pc.consent = 'denied' THEN 'consent_denied'")
            cases.append("WHEN pc.consent IS DISTINCT FROM 'granted' THEN 'consent_unknown'")
        else:
            notes.append("consent not checked (inputs.customers.consent is null)")
        reason = f"CASE {' '.join(cases)} END" if cases else "NULL::VARCHAR"
        flag_join = f" LEFT JOIN {flags} f ON f.pid = k.pid" if flags else ""
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE seg_exclusions AS SELECT c.customer_id, {reason} AS reason "
            f"FROM seg_customers c JOIN {keys.rows} k ON k.rid = c.rowid{flag_join}{consent_join}"
        )
    finally:
        keys.drop()
        con.execute("DROP TABLE IF EXISTS seg_person_consent")
    if not have:
        notes.append("no suppression or erasure registers in the workspace: nothing to match")
    return notes


def _input_lines(ws: Workspace, cc: CustomerColumns, region: str, made: list[str]) -> str:
    """SQL ``(rid, type, value)``: the identifier lines of *every* row of the customers input
    (``seg_in_customers``; ``seg_customers`` keeps the first row of an id), as the rows of
    ``seg_customers`` with the same trimmed id: a suppression on a later row's address, or on any
    NIF/NIE column (found by name, as ``mailable`` finds them), keeps the customer off every list."""
    from crmtool.identity.canonical import id_sql
    from crmtool.identity.keys import IdentityColumns, detect_identity_columns, person_lines_sql

    nifs = detect_identity_columns(ws.con, "seg_in_customers", cc.id).nifs
    cols = IdentityColumns(cc.id, [cc.email] if cc.email else [], [cc.phone] if cc.phone else [], nifs)
    body, _distinct = person_lines_sql(ws.con, "seg_in_customers", cols, made, region=region)
    trimmed = f"nullif({id_sql('i.' + ident(cc.id))}, '')"
    return (f"SELECT c.rowid AS rid, l.type, l.value FROM ({body}) l JOIN seg_in_customers i ON i.rowid = l.rid "
            f"JOIN seg_customers c ON c.customer_id = {trimmed}")


def _exclusions_of_single_records(ws: Workspace, cc: CustomerColumns, notes: list[str]) -> None:
    """``seg_exclusions`` when nothing can join two records into one person: no register to match and
    no dedupe clusters. Each customer (ids are unique in ``seg_customers``) is then a person of one
    record, whose most restrictive consent is the record's own: the same reasons as the person path
    of :func:`build_exclusions`, without building person keys."""
    from crmtool.privacy.mailable import no_email_sql

    cases: list[str] = []
    if cc.email:
        cases.append(f"WHEN {no_email_sql('c.' + ident(cc.email), need_at=False)} THEN 'no_email'")
    state, by_id = "NULL::VARCHAR", ""
    if cc.consent:
        state, by_id = customer_consent_sql(ws, cc.consent)
        cases.append("WHEN c.__seg_cs = 'denied' THEN 'consent_denied'")
        cases.append("WHEN c.__seg_cs IS DISTINCT FROM 'granted' THEN 'consent_unknown'")
    else:
        notes.append("consent not checked (inputs.customers.consent is null)")
    reason = f"CASE {' '.join(cases)} END" if cases else "NULL::VARCHAR"
    ws.con.execute(f"CREATE OR REPLACE TEMP TABLE seg_exclusions AS SELECT c.customer_id, {reason} AS reason "
                   f"FROM (SELECT c.*, {state} AS __seg_cs FROM seg_customers c{by_id}) c")
