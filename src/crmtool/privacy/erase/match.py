"""Step 2 of an erasure: find the people each request names, decide erased / not found / ambiguous.

Every table that holds customer rows in clear gets its person keys (:mod:`crmtool.identity`):
canonical identifiers and, per row, the person (dedupe cluster, else customer id). A request
matches the people holding one of its identifiers in any table, in any canonical spelling.

* **ambiguous**: the identifiers of one request disagree: no one person (customer id or dedupe
  cluster) holds all of those that were found (the id names one customer, the email another).
  Nothing is erased for it and no token is recorded: a person must decide.
* **erased**: every person holding one of its identifiers (an address on two customer records not
  yet deduplicated is the same requester's on both). All their rows go, in every table; their
  other identifiers (``linked``) are recorded so a later import drops them by any identifier, and
  rows without an id elsewhere that carry one of them go too. An identifier other people also
  hold is never linked.
* **not found**: no row; its tokens are recorded anyway, so the person never comes in later.

Temp tables: ``__erase_status (ref, status, people)``, ``__erase_pids (ref, pid)``,
``__erase_targets (ref, type, value, linked)`` (clear values, temporary) and one person-keys
pair per table; :func:`drop_match_tables` removes them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crmtool.identity.keys import cluster_map_table, customer_tables
from crmtool.identity.valuemap import SharedLookupKeys, ValueMaps, add_people, add_rows_where, shared_lookup_keys
from crmtool.privacy.erase.requests import REFS, REQ

if TYPE_CHECKING:
    from crmtool.workspace import Workspace

STATUS, PIDS, TARGETS = "__erase_status", "__erase_pids", "__erase_targets"
ERASED, NOT_FOUND, AMBIGUOUS = "erased", "not_found", "ambiguous"
ALREADY_ERASED, LINKED = "already_erased", "linked"
EARLIER = "__erase_earlier"


@dataclass
class Match:
    """The person keys of every customer table (kept for the purge step): the exact identifier lines,
    with their persons, of only the rows a question is about (:mod:`crmtool.identity.valuemap`)."""

    keys: dict[str, SharedLookupKeys] = field(default_factory=dict)
    maps: ValueMaps | None = None  # each distinct raw value of every table canonicalised once

    def add_values(self, values_sql: str) -> None:
        """Make the lines of every row, in every table, holding one of ``values_sql (type, value)`` readable."""
        if self.maps is None:
            return
        raws = self.maps.raws_matching(values_sql)  # the raw texts of those values, found once for every table
        try:
            # one round over every table: each scanned once, the cluster map and value maps read once
            add_rows_where(list(self.keys.values()),
                           {k.name: self.maps.holding_sql(k.cols, raws) for k in self.keys.values()})
        finally:
            self.maps.con.execute(f"DROP TABLE IF EXISTS {raws}")

    def add_people(self, pids_sql: str) -> None:
        """Make the lines of every row, in every table, of the people ``pids_sql (pid)`` readable."""
        add_people(list(self.keys.values()), pids_sql)

    def all_keys_sql(self) -> str:
        parts = [f"SELECT rid, pid, type, value, '{t}' AS tbl FROM {k.name}" for t, k in self.keys.items()]
        return " UNION ALL ".join(parts) or (
            "SELECT NULL::BIGINT AS rid, NULL AS pid, NULL AS type, NULL AS value, NULL AS tbl WHERE false"
        )

    def rows_of_sql(self, pids_sql: str) -> str:
        """SQL ``(rid, pid, tbl)``: every row, in every table, of the people ``pids_sql`` (one column
        ``pid``) among the rows added: all their rows once :meth:`add_people` ran for them (or each
        is a row without an id found by a value)."""
        parts = [f"SELECT rid, pid, '{t}' AS tbl FROM ({k.added_persons_of_sql(pids_sql)})"
                 for t, k in self.keys.items()]
        return " UNION ALL ".join(parts) or "SELECT NULL::BIGINT AS rid, NULL AS pid, NULL AS tbl WHERE false"


def build_keys(ws: Workspace, key: str | None) -> Match:
    # the dedupe clusters are read once for every table (not grouped again per table), and each
    # distinct raw identifier of all tables (data_, work_, clean_ copies of one export) canonicalised once
    cmap = cluster_map_table(ws.con, "__erase_clusters")
    maps, keys = shared_lookup_keys(ws.con, customer_tables(ws.con, key), name="__ek", cluster_map=cmap)
    return Match(keys, maps)


def match_requests(ws: Workspace, match: Match) -> None:
    """Fill ``__erase_status``, ``__erase_pids`` and ``__erase_targets`` from the loaded requests."""
    con = ws.con
    # every table's keys as one view; each query below reads only lines of values or people it made
    # readable first (match.add_values / add_people): the keys hold no other row's lines
    match.add_values(f"SELECT type, value FROM {REQ}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW __erase_allkeys AS {match.all_keys_sql()}")
    keys = "__erase_allkeys"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __erase_hits AS SELECT DISTINCT r.ref, r.type, r.value, k.pid
        FROM {keys} k JOIN {REQ} r ON r.type = k.type AND r.value = k.value""")
    # ambiguous: no one person holds every identifier of the request that was found (rows without an
    # id or a cluster, pid r:..., are nobody else's and never make a request ambiguous)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {STATUS} AS
        WITH per_pid AS (SELECT ref, pid, count(DISTINCT (type, value)) AS n FROM __erase_hits
                         WHERE pid NOT LIKE 'r:%' GROUP BY ALL),
             found AS (SELECT ref, count(DISTINCT (type, value)) AS n FROM __erase_hits
                       WHERE pid NOT LIKE 'r:%' GROUP BY ALL)
        SELECT f.ref, CASE
            WHEN coalesce(fd.n, 0) > coalesce((SELECT max(p.n) FROM per_pid p WHERE p.ref = f.ref), 0)
                THEN '{AMBIGUOUS}'
            WHEN EXISTS (SELECT 1 FROM __erase_hits h WHERE h.ref = f.ref) THEN '{ERASED}'
            ELSE '{NOT_FOUND}' END AS status,
            (SELECT count(*) FROM per_pid p WHERE p.ref = f.ref) AS people,
            EXISTS (SELECT 1 FROM {REQ} q WHERE q.ref = f.ref) AS has_identifier
        FROM {REFS} f LEFT JOIN found fd ON fd.ref = f.ref""")
    _already_erased(ws)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {PIDS} AS SELECT DISTINCT h.ref, h.pid FROM __erase_hits h
        JOIN {STATUS} s ON s.ref = h.ref AND s.status = '{ERASED}'""")
    # the identifiers of the people being erased, unless someone who stays holds them too
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {TARGETS} AS
        SELECT DISTINCT q.ref, q.type, q.value, false AS linked FROM {REQ} q
        JOIN {STATUS} s ON s.ref = q.ref AND s.status <> '{AMBIGUOUS}'""")
    # (the identifiers of the erased people first, then who else holds those few: the check never
    # builds a hash table over every key of every table)
    match.add_people(f"SELECT pid FROM {PIDS}")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __erase_linked AS SELECT DISTINCT p.ref, k.type, k.value
        FROM {keys} k JOIN {PIDS} p ON p.pid = k.pid""")
    match.add_values("SELECT type, value FROM __erase_linked")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __erase_shared AS SELECT DISTINCT o.type, o.value FROM {keys} o
        JOIN (SELECT DISTINCT type, value FROM __erase_linked) c ON c.type = o.type AND c.value = o.value
        WHERE o.pid NOT LIKE 'r:%' AND o.pid NOT IN (SELECT pid FROM {PIDS})""")
    con.execute(f"""INSERT INTO {TARGETS} SELECT l.ref, l.type, l.value, true FROM __erase_linked l
        WHERE NOT EXISTS (SELECT 1 FROM __erase_shared o WHERE o.type = l.type AND o.value = l.value)
          AND NOT EXISTS (SELECT 1 FROM {TARGETS} t WHERE t.type = l.type AND t.value = l.value
                          AND t.ref = l.ref)""")
    # rows without an id that carry one of those identifiers belong to them too
    con.execute(f"""INSERT INTO {PIDS} SELECT DISTINCT t.ref, k.pid FROM {keys} k
        JOIN {TARGETS} t ON t.type = k.type AND t.value = k.value
        WHERE k.pid LIKE 'r:%' AND NOT EXISTS (SELECT 1 FROM {PIDS} x WHERE x.ref = t.ref AND x.pid = k.pid)""")
    for t in ("__erase_hits", "__erase_linked", "__erase_shared"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    con.execute("DROP VIEW IF EXISTS __erase_allkeys")


def earlier_erasures_sql(requests: str) -> str:
    """SQL ``(ref, erased_at, run_id)``: for each request of ``requests (ref, type, value)`` naming an
    identifier an earlier run erased (a request's own identifier or a linked one of the person erased),
    the first such erasure. Rows recorded before outcomes were (status NULL) prove nothing here."""
    return f"""SELECT q.ref, min(p.erased_at) AS erased_at, arg_min(p.run_id, p.erased_at) AS run_id
        FROM (SELECT DISTINCT ref, type, crm_token(value) AS token FROM ({requests})) q
        JOIN privacy_erasures p ON p.identifier_type = q.type AND p.token = q.token
        WHERE p.status IN ('{ERASED}', '{LINKED}') GROUP BY q.ref"""


def _already_erased(ws: Workspace) -> None:
    """A request found nowhere now, whose identifier an earlier run erased, is *already erased* (with the
    date and run of that erasure in ``__erase_earlier``), not *not found*."""
    con = ws.con
    ws.hasher  # noqa: B018 - registers crm_token()
    first = earlier_erasures_sql(f"SELECT ref, type, value FROM {REQ}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {EARLIER} AS {first}")
    con.execute(f"UPDATE {STATUS} SET status = '{ALREADY_ERASED}' WHERE status = '{NOT_FOUND}' "
                f"AND ref IN (SELECT ref FROM {EARLIER})")


def rows_to_delete(ws: Workspace, match: Match) -> dict[str, int]:
    """Temp table ``__erase_rows (tbl, rid)``; returns rows per table."""
    con = ws.con
    # the rows of the erased people: match_requests added every row of theirs (add_people for the
    # people found, the rows without an id by their values), with its person: no scan of the tables
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __erase_person_rows AS
        {match.rows_of_sql(f"SELECT DISTINCT pid FROM {PIDS}")}""")
    con.execute("""CREATE OR REPLACE TEMP TABLE __erase_rows AS SELECT DISTINCT r.tbl, r.rid
        FROM __erase_person_rows r""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE __erase_ref_rows AS SELECT p.ref, count(DISTINCT (r.tbl, r.rid)) AS n
        FROM __erase_person_rows r JOIN {PIDS} p ON p.pid = r.pid GROUP BY p.ref""")
    con.execute("DROP TABLE IF EXISTS __erase_person_rows")
    counts = dict(con.execute("SELECT tbl, count(*) FROM __erase_rows GROUP BY tbl").fetchall())
    return {t: int(counts.get(t, 0)) for t in match.keys}


def drop_match_tables(ws: Workspace, match: Match) -> None:
    ws.con.execute("DROP VIEW IF EXISTS __erase_allkeys")  # it reads the person keys: gone before them
    for k in match.keys.values():
        k.drop()
    if match.maps is not None:
        match.maps.drop()
    for t in (STATUS, PIDS, TARGETS, EARLIER, "__erase_rows", "__erase_hits", "__erase_ref_rows", "__erase_tokens",
              "__erase_linked", "__erase_shared", "__erase_clusters", "__erase_person_rows"):
        ws.con.execute(f"DROP TABLE IF EXISTS {t}")
