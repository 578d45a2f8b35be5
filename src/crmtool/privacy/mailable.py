"""Who may be emailed: email consent granted AND not suppressed AND not erased AND not hard-bounced, per person.

:func:`mailable_table` builds a temp table ``(<row column>, mailable, not_mailable_reason)`` for a
customer table; :func:`add_mailable_column` writes the flag into the table itself. The first
reason that applies wins, in this order (segments use the same names and order): ``erased``,
``suppressed`` (a suppression of any kind on any identifier of the person), ``bounced`` (hard
bounce or complaint in ``email_bounces``), ``no_email`` (blank, or no one usable address:
:func:`no_email_sql`), ``consent_denied``, ``consent_unknown``.
Erased, suppressed, bounced and consent are decided per person (:mod:`crmtool.identity`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crmtool.privacy.consent import ChannelConsent, normalise_consent_sql
from crmtool.privacy.identity import ensure_tables, table_columns
from crmtool.sqltext import ident

if TYPE_CHECKING:
    from crmtool.ruleset import RuleSet
    from crmtool.workspace import Workspace

_COUNTER = itertools.count(1)
REASONS = ("erased", "suppressed", "bounced", "no_email", "consent_denied", "consent_unknown")
# a cell a mail platform may read as another address than the one the identity layer matched, or as
# several: a display name (``Ana <a@x.es>``), a list (``;``, ``,``, whitespace between two words) or
# invisible characters (controls, format characters such as a zero-width space or a byte-order mark);
# whitespace at either end is allowed, and ``<a@x.es>`` too
_S = r"[\s\p{Z}]"
_NS = r"[^\s\p{Z}]"
UNUSABLE_EMAIL = (r"[;,\p{Cf}\x{0}-\x{8}\x{e}-\x{1f}\x{7f}-\x{9f}]"
                  rf"|{_NS}{_S}+{_NS}|[^<\s\p{{Z}}]{_S}*<|>{_S}*{_NS}")


def no_email_sql(column_sql: str, *, need_at: bool = True) -> str:
    """SQL true when ``column_sql`` holds no usable address (reason ``no_email``): blank, no ``@``
    (unless ``not need_at``: segments keep such a customer for the phone audiences), or a cell a mail
    platform may read as another or several addresses (:data:`UNUSABLE_EMAIL`)."""
    v = f"CAST({column_sql} AS VARCHAR)"
    at = f" OR NOT contains({v}, '@')" if need_at else ""
    return f"(nullif(trim({v}), '') IS NULL{at} OR regexp_matches({v}, '{UNUSABLE_EMAIL}'))"


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
    raw_table: str | None = None,
    nif_columns: tuple[str, ...] = (),
    clusters: bool = True,
) -> MailableSummary:
    """Flag every row of ``table``; ``consent`` (rules) or ``consent_column`` gives the email consent.

    Without any consent column nobody is mailable: unknown consent never counts as granted.
    Matching goes through :mod:`crmtool.identity`: an erasure, suppression or hard bounce on any
    identifier of any record of a person (their dedupe cluster) makes every record of them not
    mailable, and a person's consent is the most restrictive of their records'. ``raw_table``
    (the table as loaded, same ``_row``) adds the addresses as they were before a rule fixed them.
    ``clusters=False`` leaves the workspace's dedupe clusters out: a run that deduplicates again
    decides per person with its own clusters (:func:`person_level_after_dedupe`), never with the
    previous run's, which may join records the new clusters keep apart.
    """
    from crmtool.identity.canonical import register_sql
    from crmtool.identity.keys import IdentityColumns, person_lines_sql, person_rows_sql
    from crmtool.identity.registers import person_consent_sql, person_flags_of_lines

    con = ws.con
    ensure_tables(con)
    register_sql(con)
    out = out_table or f"__mailable_{table}"
    names = [c for c, _t in table_columns(con, table)]
    row_expr = f"t.{ident(row_column)}" if row_column in names else "t.rowid"
    if consent is not None:
        state = consent.state_sql("t")
    elif consent_column:
        state = normalise_consent_sql(f"t.{ident(consent_column)}")
    else:
        state = "'unknown'"
    cols = IdentityColumns(key_column, [email_column], [phone_column] if phone_column else [], list(nif_columns))
    extra = [(raw_table, email_column, "email")] if raw_table and ws.table_exists(raw_table) else []
    # every row's person, consent state and address in one scan; the identifier lines are never
    # stored: they stream into the join with the registers (person_flags_of_lines)
    rows = f"__mailable_rows_{next(_COUNTER)}"
    made = [rows]
    try:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {rows} AS SELECT rid, __r AS r, pid, cs, em FROM (
            {person_rows_sql(con, table, cols, clusters=clusters,
                             also=f"{row_expr} AS __r, {state} AS cs, "
                                  f"nullif(trim(CAST(t.{ident(email_column)} AS VARCHAR)), '') AS em")})""")
        lines, _repeats = person_lines_sql(con, table, cols, made, extra=extra)
        flags = person_flags_of_lines(ws, lines, rows, made)
        # consent of a person is the most restrictive of their records' (denied > unknown > granted)
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {ident(out)} AS
            SELECT r AS {ident(row_column)}, reason IS NULL AS mailable, reason AS not_mailable_reason FROM (
                SELECT b.r, CASE
                    WHEN f.erased THEN 'erased'
                    WHEN f.suppressed THEN 'suppressed'
                    WHEN f.bounced THEN 'bounced'
                    WHEN {no_email_sql('b.em')} THEN 'no_email'
                    WHEN pc.consent = 'denied' THEN 'consent_denied'
                    WHEN pc.consent <> 'granted' THEN 'consent_unknown'
                END AS reason
                FROM {rows} b JOIN {flags} f ON f.pid = b.pid
                JOIN ({person_consent_sql(f"SELECT pid, cs FROM {rows}")}) pc ON pc.pid = b.pid)
            ORDER BY 1""")
    finally:
        for t in made:
            con.execute(f"DROP TABLE IF EXISTS {t}")
    counts = dict(
        con.execute(
            f"SELECT coalesce(not_mailable_reason, 'mailable'), count(*) FROM {ident(out)} GROUP BY ALL ORDER BY 1"
        ).fetchall()
    )
    n_rows = sum(int(v) for v in counts.values())
    mailable = int(counts.pop("mailable", 0))
    return MailableSummary(out, n_rows, mailable, {k: int(counts.get(k, 0)) for k in REASONS})


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
    ws: Workspace,
    table: str,
    ruleset: RuleSet,
    *,
    out_table: str | None = None,
    row_column: str = "_row",
    raw_table: str | None = None,
    clusters: bool = True,
) -> MailableSummary | None:
    """:func:`mailable_table` with everything taken from the rules and the column names: email consent
    from the ``consent`` section, the record key from ``dataset.key``, email and phone columns by name.
    ``None`` when the table has no email column (then nobody is mailable)."""
    from crmtool.identity.keys import detect_identity_columns
    from crmtool.privacy.consent import parse_consent

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
        raw_table=raw_table,
        nif_columns=tuple(cols.nifs),
        clusters=clusters,
    )


def person_level_after_dedupe(
    ws: Workspace, table: str, ruleset: RuleSet, *, raw_table: str | None = None, golden: str = "dedupe_golden"
) -> int:
    """Once dedupe has found who is one person, make ``table``'s ``mailable`` column and the golden
    records follow the person: recompute the flag with the clusters (a suppression on one record
    of a cluster now reaches the others; consent is the most restrictive of the cluster's), and
    give each golden record the most restrictive consent value and ``mailable`` of its records.
    Returns how many rows of ``table`` lost ``mailable``."""
    from crmtool.identity.keys import cluster_map_sql, detect_identity_columns
    from crmtool.privacy.consent import parse_consent

    con = ws.con
    summary = mailable_for_ruleset(ws, table, ruleset, raw_table=raw_table, out_table="__mailable_person")
    if summary is None or "mailable" not in {c for c, _t in table_columns(con, table)}:
        return 0
    t = ident(table)
    changed = int(con.execute(
        f"SELECT count(*) FROM {t} c JOIN __mailable_person m ON m._row = c._row WHERE c.mailable AND NOT m.mailable"
    ).fetchall()[0][0])
    # dedupe can only add evidence against mailing (another record's refusal, a cluster-wide
    # suppression): the per-person flag never turns a row that was not mailable into a mailable one
    con.execute(f"UPDATE {t} SET mailable = {t}.mailable AND m.mailable FROM __mailable_person m "
                f"WHERE {t}._row = m._row")
    con.execute("DROP TABLE IF EXISTS __mailable_person")
    cmap = cluster_map_sql(con)
    key = detect_identity_columns(con, table, ruleset.dataset.key).id
    if not (ws.table_exists(golden) and cmap and key):
        return changed
    gcols = {c for c, _t in table_columns(con, golden)}
    consent = parse_consent(ruleset).get("email")
    sets, picks = [], []
    if "mailable" in gcols:
        picks.append("bool_and(coalesce(c.mailable, false)) AS __m")
        sets.append("mailable = x.__m")
    if consent is not None and consent.column in gcols:
        state = consent.state_sql("c")
        rank = f"CASE {state} WHEN 'denied' THEN 0 WHEN 'unknown' THEN 1 ELSE 2 END"
        picks.append(f"arg_min(c.{ident(consent.column)}, {rank}) AS __c")
        sets.append(f"{ident(consent.column)} = x.__c")
    if sets and "cluster_id" in gcols:
        g = ident(golden)
        con.execute(f"""UPDATE {g} SET {", ".join(sets)} FROM (
            SELECT dc.cluster_id, {", ".join(picks)} FROM {t} c
            JOIN ({cmap}) dc ON dc.record_id = trim(CAST(c.{ident(key)} AS VARCHAR)) GROUP BY dc.cluster_id) x
            WHERE CAST({g}.cluster_id AS VARCHAR) = x.cluster_id""")
    return changed
