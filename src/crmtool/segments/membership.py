"""Segment membership: conditions -> matches -> exclusive groups -> holdouts and send status; history.

- Exclusive groups: segments sharing ``exclusive: <group>`` keep a customer only in the one with
  the lowest ``priority`` number (1 first; equal priorities go to the segment earlier in the file).
- Holdouts, strongest first: ``global`` (every segment), ``segment`` (the segment's own), then
  ``campaign:<name>`` for the campaign's segments (see :mod:`crmtool.segments.holdout`).
- Status: ``excluded`` (a protection reason, see :mod:`crmtool.segments.protection`) wins over
  ``holdout``, which wins over ``send``. ``in_holdout`` is reported whatever the status.
- History: every run appends its memberships to ``segments_membership`` (customer id, segment,
  status, holdout) and one row to ``segments_runs``; :func:`diff` compares two runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from crmtool.errors import UsageError
from crmtool.segments.conditions import Compiler
from crmtool.segments.holdout import bucket_sql
from crmtool.segments.model import SegmentsSpec
from crmtool.sqltext import sql_str
from crmtool.status import Status

if TYPE_CHECKING:
    import duckdb

    from crmtool.workspace import Workspace

HISTORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS segments_runs (
    run_id VARCHAR PRIMARY KEY, as_of DATE NOT NULL, recorded_at TIMESTAMP NOT NULL,
    spec_file VARCHAR, customers BIGINT
);
CREATE TABLE IF NOT EXISTS segments_membership (
    run_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, customer_id VARCHAR NOT NULL,
    status VARCHAR NOT NULL, holdout VARCHAR
);
"""


def evaluate(
    con: duckdb.DuckDBPyConnection, spec: SegmentsSpec, columns: dict[str, str], as_of: date
) -> None:
    """``seg_matches`` (every condition match) and ``seg_members`` (after exclusive groups)."""
    con.execute("CREATE OR REPLACE TEMP TABLE seg_matches AS " + " UNION ALL ".join(match_selects(con, spec, columns,
                                                                                                as_of)))
    # a view (temp objects live as long as the connection, so never a table of an older run): read
    # once, by the status statement, so the members are never stored apart from their status
    con.execute(f"CREATE OR REPLACE TEMP VIEW seg_members AS {MEMBERS_SQL}")


#: ``seg_members`` over ``seg_matches``: a customer stays in one segment of each exclusive group
MEMBERS_SQL = """
        SELECT customer_id, segment, idx FROM seg_matches WHERE grp IS NULL
        UNION ALL
        SELECT customer_id, segment, idx FROM seg_matches WHERE grp IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY customer_id, grp ORDER BY priority, idx) = 1"""


def match_selects(con: duckdb.DuckDBPyConnection, spec: SegmentsSpec, columns: dict[str, str],
                  as_of: date) -> list[str]:
    """One SELECT per segment of the customers of ``seg_features`` its condition matches, bound
    against ``seg_features`` here (an unknown column is a configuration error with its file:line)."""
    import duckdb

    from crmtool.errors import ConfigError

    compiler = Compiler(columns, as_of)
    selects = []
    for seg in spec.segments:
        compiler.context = f"segment '{seg.name}': "
        cond = compiler.compile(seg.when)
        group = sql_str(seg.exclusive) if seg.exclusive else "NULL::VARCHAR"
        selects.append(
            f"SELECT customer_id, {sql_str(seg.name)} AS segment, {seg.index} AS idx, "
            f"{group} AS grp, {seg.priority} AS priority FROM seg_features WHERE {cond}"
        )
    compiler.raise_problems()
    for seg, select in zip(spec.segments, selects, strict=True):
        try:
            con.execute(f"DESCRIBE {select}")
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0].replace("Binder Error: ", "").replace("Parser Error: ", "")
            raise ConfigError([(seg.when.loc, f"segment '{seg.name}': {first}")]) from None
    return selects


def _salts(spec: SegmentsSpec) -> list[str]:
    salts = []
    for h in [spec.global_holdout, *(s.holdout for s in spec.segments), *(c.holdout for c in spec.campaigns)]:
        if h is not None and h.salt not in salts:
            salts.append(h.salt)
    return salts


def apply_status(con: duckdb.DuckDBPyConnection, spec: SegmentsSpec, *, sort: bool = True) -> None:
    """``seg_status(customer_id, segment, idx, holdout, reason, status)``, stored in ``idx, customer_id``
    order unless ``sort`` is off (a preview, which writes nothing): the rows of one segment sit
    together, so a send list's ``idx = n`` reads the few row groups of its segment (their min/max
    say which) instead of every membership, and the memberships file, written in that order, is a
    plain scan (:func:`stored_in_order`)."""
    buckets, status = status_sql(spec)
    con.execute(f"CREATE OR REPLACE TEMP TABLE seg_buckets AS {buckets}")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE seg_status AS {status}
        {"ORDER BY idx, customer_id" if sort else ""}""")


def status_sql(spec: SegmentsSpec, bucket: Callable[[str, str], str] = bucket_sql) -> tuple[str, str]:
    """The SELECTs of ``seg_buckets`` (over ``seg_features`` and ``seg_exclusions``) and of
    ``seg_status`` (over ``seg_members`` and ``seg_buckets``); ``bucket``: the SQL of a holdout
    bucket (:func:`crmtool.segments.holdout.bucket_sql` or its Spark form)."""
    salts = _salts(spec)
    bcols = ", ".join(f"{bucket('customer_id', s)} AS b{i}" for i, s in enumerate(salts))
    # one row per customer with its buckets and its exclusion reason: the members are joined to
    # one per-customer table, not to two. Every customer of the features, not the distinct
    # members: no DISTINCT over the members (several rows per customer), at the price of the
    # buckets of customers in no segment
    buckets = (f"SELECT customer_id{', ' + bcols if bcols else ''}, x.reason "
               "FROM (SELECT customer_id FROM seg_features) LEFT JOIN seg_exclusions x USING (customer_id)")
    whens = []
    if spec.global_holdout:
        h = spec.global_holdout
        whens.append(f"WHEN b.b{salts.index(h.salt)} < {h.basis_points} THEN 'global'")
    seg_h = [(s.name, s.holdout) for s in spec.segments if s.holdout]
    if seg_h:
        inner = " ".join(
            f"WHEN {sql_str(n)} THEN b.b{salts.index(h.salt)} < {h.basis_points}" for n, h in seg_h
        )
        whens.append(f"WHEN CASE m.segment {inner} ELSE FALSE END THEN 'segment'")
    for c in spec.campaigns:
        names = ", ".join(sql_str(n) for n in c.segments)
        whens.append(
            f"WHEN m.segment IN ({names}) AND b.b{salts.index(c.holdout.salt)} < {c.holdout.basis_points} "
            f"THEN {sql_str('campaign:' + c.name)}"
        )
    holdout = f"CASE {' '.join(whens)} END" if whens else "NULL::VARCHAR"
    return buckets, f"""
        SELECT *, CASE WHEN reason IS NOT NULL THEN 'excluded' WHEN holdout IS NOT NULL THEN 'holdout'
                       ELSE 'send' END AS status
        FROM (SELECT m.customer_id, m.segment, m.idx, {holdout} AS holdout, b.reason
              FROM seg_members m JOIN seg_buckets b USING (customer_id))"""


def stored_in_order(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether a table is read back in the order it was stored in (DuckDB's
    ``preserve_insertion_order``, on by default and in every workspace): then a scan of
    ``seg_status`` gives its rows in ``idx, customer_id`` order without sorting them again."""
    return bool(con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0])


@dataclass
class SegmentCounts:
    name: str
    description: str
    group: str | None
    matched: int = 0  # condition true, before exclusive groups
    members: int = 0  # after exclusive groups
    share: float = 0.0  # members / customers
    holdout: int = 0  # eligible customers held out
    excluded: int = 0  # members excluded by protection (any reason)
    send: int = 0
    previous: int | None = None  # members in the previous run
    entered: int | None = None
    exited: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def counts(con: duckdb.DuckDBPyConnection, spec: SegmentsSpec, customers: int) -> list[SegmentCounts]:
    matched = dict(con.execute("SELECT segment, count(*) FROM seg_matches GROUP BY 1").fetchall())
    rows = con.execute(
        "SELECT segment, count(*), count(*) FILTER (WHERE status = 'holdout'), "
        "count(*) FILTER (WHERE status = 'excluded'), count(*) FILTER (WHERE status = 'send') "
        "FROM seg_status GROUP BY 1"
    ).fetchall()
    by = {r[0]: r[1:] for r in rows}
    out = []
    for seg in spec.segments:
        m, h, x, s = by.get(seg.name, (0, 0, 0, 0))
        out.append(
            SegmentCounts(
                seg.name,
                seg.description,
                seg.exclusive,
                int(matched.get(seg.name, 0)),
                int(m),
                round(m / customers, 4) if customers else 0.0,
                int(h),
                int(x),
                int(s),
            )
        )
    return out


def ensure_history(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(HISTORY_SCHEMA)


def previous_run(con: duckdb.DuckDBPyConnection, before_run: str | None = None) -> str | None:
    """The latest recorded run, or the one recorded just before ``before_run``."""
    ensure_history(con)
    if before_run is None:
        rows = con.execute("SELECT run_id FROM segments_runs ORDER BY recorded_at DESC, run_id DESC LIMIT 1").fetchall()
    else:
        rows = con.execute(
            "SELECT r.run_id FROM segments_runs r, (SELECT recorded_at FROM segments_runs WHERE run_id = ?) b "
            "WHERE r.recorded_at < b.recorded_at ORDER BY r.recorded_at DESC, r.run_id DESC LIMIT 1",
            [before_run],
        ).fetchall()
    return str(rows[0][0]) if rows else None


def record(con: duckdb.DuckDBPyConnection, run_id: str, as_of: date, spec_file: str, customers: int) -> None:
    from datetime import UTC, datetime

    ensure_history(con)
    con.execute(
        "INSERT INTO segments_runs VALUES (?, ?, ?, ?, ?)",
        [run_id, as_of, datetime.now(UTC).replace(tzinfo=None), spec_file, customers],
    )
    con.execute(
        "INSERT INTO segments_membership SELECT ?, segment, customer_id, status, holdout FROM seg_status",
        [run_id],
    )


def compare_with(con: duckdb.DuckDBPyConnection, base_run: str, rows: list[SegmentCounts]) -> None:
    """Fill previous/entered/exited of ``rows`` against ``base_run`` (current = ``seg_status``)."""
    prev = dict(
        con.execute(
            "SELECT segment, count(*) FROM segments_membership WHERE run_id = ? GROUP BY 1", [base_run]
        ).fetchall()
    )
    changes = con.execute(
        """
        WITH cur AS (SELECT segment, customer_id FROM seg_status),
             old AS (SELECT segment, customer_id FROM segments_membership WHERE run_id = ?)
        SELECT segment, count(*) FILTER (WHERE o.customer_id IS NULL), count(*) FILTER (WHERE
            c.customer_id IS NULL)
        FROM cur c FULL JOIN old o USING (segment, customer_id) GROUP BY 1""",
        [base_run],
    ).fetchall()
    ch = {r[0]: (int(r[1]), int(r[2])) for r in changes}
    for r in rows:
        r.previous = int(prev.get(r.name, 0))
        r.entered, r.exited = ch.get(r.name, (0, 0))


@dataclass
class DiffResult:
    """Who entered and who exited each segment between two runs."""

    base_run: str
    run: str
    base_as_of: date
    as_of: date
    segments: dict[str, dict[str, int]] = field(default_factory=dict)
    changes_query: str = ""  # SQL over the workspace giving (segment, customer_id, change), sorted

    @property
    def status(self) -> Status:
        """A comparison that returns is complete."""
        return Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return {
            "base_run": self.base_run,
            "run": self.run,
            "base_as_of": str(self.base_as_of),
            "as_of": str(self.as_of),
            "segments": self.segments,
        }


def _resolve(con: duckdb.DuckDBPyConnection, since: str | None, latest: str) -> str:
    if since is None:
        base = previous_run(con, latest)
        if base is None:
            raise UsageError(
                "only one segment run in the workspace: nothing to compare with",
                "run 'crmtool segment' again on a later day, then diff",
            )
        return base
    rows = con.execute("SELECT run_id FROM segments_runs WHERE run_id = ?", [since]).fetchall()
    if rows:
        return str(rows[0][0])
    try:
        day = date.fromisoformat(since)
    except ValueError:
        raise UsageError(
            f"--since {since!r} is neither a run id nor a date (YYYY-MM-DD)",
            "list runs with 'crmtool segment diff --list-runs'",
        ) from None
    rows = con.execute(
        "SELECT run_id FROM segments_runs WHERE as_of <= ? AND run_id <> ? "
        "ORDER BY as_of DESC, recorded_at DESC LIMIT 1",
        [day, latest],
    ).fetchall()
    if not rows:
        raise UsageError(f"no segment run with as_of on or before {since}")
    return str(rows[0][0])


def list_runs(con: duckdb.DuckDBPyConnection) -> list[tuple[str, date, int]]:
    ensure_history(con)
    rows = con.execute(
        "SELECT r.run_id, r.as_of, count(m.customer_id) FROM segments_runs r LEFT JOIN "
        "segments_membership m USING (run_id) GROUP BY r.run_id, r.as_of, r.recorded_at "
        "ORDER BY r.recorded_at, r.run_id"
    ).fetchall()
    return [(str(a), b, int(c)) for a, b, c in rows]


def diff(ws: Workspace, since: str | None = None, run: str | None = None) -> DiffResult:
    """Compare ``run`` (default: the latest) with ``since`` (a run id or a date; default: the run before)."""
    con = ws.con
    ensure_history(con)
    latest = run or previous_run(con)
    if latest is None:
        raise UsageError("no segment runs recorded in this workspace", "run 'crmtool segment ...' first")
    base = _resolve(con, since, latest)
    as_of = dict(
        con.execute(
            "SELECT run_id, as_of FROM segments_runs WHERE run_id IN (?, ?)", [base, latest]
        ).fetchall()
    )
    query = f"""
        WITH cur AS (SELECT segment, customer_id FROM segments_membership WHERE run_id = {sql_str(latest)}),
             old AS (SELECT segment, customer_id FROM segments_membership WHERE run_id = {sql_str(base)})
        SELECT segment, customer_id, CASE WHEN o.customer_id IS NULL THEN 'entered' ELSE 'exited'
            END AS change
        FROM cur c FULL JOIN old o USING (segment, customer_id)
        WHERE c.customer_id IS NULL OR o.customer_id IS NULL
        ORDER BY segment, change, customer_id"""
    result = DiffResult(base, latest, as_of[base], as_of[latest], changes_query=query)
    sizes = con.execute(f"""
        SELECT segment, count(*) FILTER (WHERE run_id = {sql_str(base)}), count(*) FILTER (WHERE
            run_id = {sql_str(latest)})
        FROM segments_membership WHERE run_id IN ({sql_str(base)}, {sql_str(latest)}) GROUP BY
            1""").fetchall()
    changes = dict(
        ((s, c), n)
        for s, c, n in con.execute(
            f"SELECT segment, change, count(*) FROM ({query}) GROUP BY 1, 2"
        ).fetchall()
    )
    for seg, before, after in sorted(sizes):
        result.segments[seg] = {
            "before": int(before),
            "after": int(after),
            "entered": int(changes.get((seg, "entered"), 0)),
            "exited": int(changes.get((seg, "exited"), 0)),
        }
    return result


def forget_customers(con: duckdb.DuckDBPyConnection, token_sql_condition: str) -> int:
    """Delete history rows of erased customers: ``token_sql_condition`` is a SQL predicate over
    ``crm_token(customer_id)`` (e.g. ``crm_token(customer_id) IN (SELECT token FROM privacy_erasures)``)."""
    ensure_history(con)
    before = int(con.execute("SELECT count(*) FROM segments_membership").fetchall()[0][0])
    con.execute(f"DELETE FROM segments_membership WHERE {token_sql_condition}")
    after = int(con.execute("SELECT count(*) FROM segments_membership").fetchall()[0][0])
    return before - after


def overlap(
    con: duckdb.DuckDBPyConnection, spec: SegmentsSpec, table: str = "seg_matches"
) -> list[list[int]]:
    """Square matrix: customers in both segment i and segment j (diagonal: size)."""
    rows = con.execute(f"""
        SELECT a.idx, b.idx, count(*) FROM {table} a JOIN {table} b USING (customer_id)
        GROUP BY 1, 2""").fetchall()
    n = len(spec.segments)
    matrix = [[0] * n for _ in range(n)]
    for i, j, c in rows:
        matrix[int(i)][int(j)] = int(c)
    return matrix

