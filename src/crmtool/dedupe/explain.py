"""``explain``: why two records of the last dedupe run were (or were not) matched, or one record's cluster.

It recomputes the pair's levels and weights from the workspace's ``dedupe_prep`` and ``dedupe_model``,
names the vetoes that fired, the household cap, and the chaining guard that cut the pair (``dedupe_cuts``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crmtool.dedupe.compare import compute_levels
from crmtool.dedupe.health import check_model
from crmtool.dedupe.model import Model
from crmtool.dedupe.spec import DedupeSpec
from crmtool.dedupe.tables import CUTS, MODEL, PAIRS, PREP, RECORDS
from crmtool.dedupe.veto import veto_parts
from crmtool.errors import InputError, UsageError
from crmtool.status import Status

if TYPE_CHECKING:
    from crmtool.workspace import Workspace


@dataclass
class ComparisonExplained:
    name: str
    column: str
    level: str | None
    weight: float
    household: bool = False


@dataclass
class Explanation:
    """Why two records were (or were not) matched; for one record, its cluster and best pairs."""

    record_ids: tuple[str, ...]
    comparisons: list[ComparisonExplained] = field(default_factory=list)
    prior_weight: float = 0.0
    match_weight: float | None = None
    match_probability: float | None = None
    candidate: bool = False
    blocking_rule: str | None = None
    decision: str | None = None
    vetoed: bool = False
    vetoes: list[str] = field(default_factory=list)
    household_weight: float | None = None  # the group's agreements before the cap
    household_cap: float | None = None
    split_by: str | None = None  # the chaining guard or veto that cut this pair out of a cluster
    #: what made the guard split: the pair of the cluster that clearly did not match, and why
    split_trigger: str | None = None
    threshold: float = 0.0
    same_cluster: bool = False
    cluster_id: str | None = None
    neighbours: list[tuple[str, float]] = field(default_factory=list)
    #: one record: the pairs with it that the chaining guard cut (other id, reason, trigger), and its vetoed pairs
    #: the model scored at or above the review band (other id, match probability, the vetoes that fired),
    #: best first: below the band a veto changed nothing
    cuts: list[tuple[str, str, str | None]] = field(default_factory=list)
    vetoed_pairs: list[tuple[str, float, list[str]]] = field(default_factory=list)
    #: the verdict on the run's model (crmtool.dedupe.health): a degenerate model explains little
    model_check: dict[str, Any] = field(default_factory=dict)
    model_warning: str = ""

    @property
    def status(self) -> Status:
        """An explanation that returns is complete (unknown ids raise)."""
        return Status.PASS

    def as_dict(self) -> dict[str, Any]:
        return {k: ([c.__dict__ for c in v] if k == "comparisons" else v) for k, v in self.__dict__.items()}


def explain(ws: Workspace, spec: DedupeSpec, record_a: str, record_b: str | None = None) -> Explanation:
    """Explain the last dedupe run of this workspace for one record or a pair of records."""
    con = ws.con
    if not (ws.table_exists(PREP) and ws.table_exists(MODEL)):
        raise UsageError(
            "no dedupe run in this workspace",
            "run 'crmtool dedupe FILE --workspace W' first, with the same --workspace",
        )
    model = Model.from_json(
        con.execute(f"SELECT model FROM {MODEL} ORDER BY created_at DESC LIMIT 1").fetchall()[0][0]
    )
    ids = [record_a] + ([record_b] if record_b is not None else [])
    rids = []
    for rid in ids:
        row = con.execute(f"SELECT __rid FROM {PREP} WHERE __id = ?", [rid.strip()]).fetchall()
        if not row:
            raise InputError(f"record {rid!r} is not in the last dedupe run")
        rids.append(int(row[0][0]))
    cluster_of = dict(
        con.execute(
            f"SELECT record_id, cluster_id FROM {RECORDS} WHERE record_id IN ({', '.join('?' for _ in ids)})",
            [i.strip() for i in ids],
        ).fetchall()
    )
    exp = Explanation(
        tuple(ids),
        prior_weight=model.prior_weight,
        threshold=spec.threshold,
        cluster_id=cluster_of.get(record_a.strip()),
    )
    check = check_model(model, spec)
    exp.model_check, exp.model_warning = check.as_dict(), check.warning()
    if record_b is None:
        _one_record(ws, spec, model, rids[0], exp)
        return exp
    lo, hi = sorted(rids)
    exp.same_cluster = cluster_of.get(record_a.strip()) is not None and cluster_of.get(
        record_a.strip()
    ) == cluster_of.get(record_b.strip())
    found = con.execute(f"SELECT rule, decision FROM {PAIRS} WHERE l = ? AND r = ?", [lo, hi]).fetchall()
    if found:
        exp.candidate = found[0][0] >= 0
        if found[0][0] >= 0:
            exp.blocking_rule = spec.blocking[int(found[0][0])].name
        exp.decision = found[0][1]
    else:
        rule = _blocking_rule_of(ws, spec, lo, hi)
        if rule is not None:
            exp.candidate, exp.blocking_rule = True, spec.blocking[rule].name
    from crmtool.dedupe.prepare import Prepared, name_email_rest, needed_features

    prep = Prepared(PREP, 0)
    prep_cols = {r[0] for r in con.execute(f"DESCRIBE {PREP}").fetchall()}
    for i, (col, transform) in enumerate(needed_features(spec)):
        prep.features[(col, transform)] = f"f{i}_{transform}"
    name_email_rest(spec, prep)
    missing = [f for f in prep.features.values() if f not in prep_cols]
    if missing:
        raise UsageError("the dedupe rules changed since the last run", "run 'crmtool dedupe' again first")
    for c in spec.comparisons:
        if c.term_frequency:
            prep.tf[c.name] = f"tf_{len(prep.tf)}"
    con.execute("CREATE OR REPLACE TEMP TABLE __dd_one AS SELECT ?::INTEGER AS l, ?::INTEGER AS r", [lo, hi])
    compute_levels(con, prep, spec, "__dd_one", "__dd_one_l", temp=True)
    tf_cols = {i: f"tf{i}" for i, c in enumerate(spec.comparisons) if c.name in prep.tf}
    from crmtool.dedupe.model import household_raw_sql, total_sql, weight_sql

    n = len(spec.comparisons)
    weights = ", ".join(weight_sql(model, i, tf_cols.get(i)) for i in range(n))
    parts = veto_parts(spec, model, tf_cols)
    fired = ", ".join(f"({sql}) AS v{k}" for k, (_, sql) in enumerate(parts)) or "NULL AS v0"
    vals: tuple[Any, ...] = con.execute(
        f"SELECT {', '.join(f'g{i}' for i in range(n))}, {weights}, {total_sql(model, tf_cols)}, "
        f"{household_raw_sql(model, tf_cols)}, {fired} FROM __dd_one_l"
    ).fetchall()[0]
    con.execute("DROP TABLE IF EXISTS __dd_one; DROP TABLE IF EXISTS __dd_one_l")
    for i, c in enumerate(spec.comparisons):
        level = vals[i]
        exp.comparisons.append(
            ComparisonExplained(c.name, c.column, None if level is None else c.levels[level],
                                round(float(vals[n + i]), 4), i in model.household)
        )
    total = float(vals[2 * n])
    if model.household and model.household_cap is not None:
        exp.household_weight = round(float(vals[2 * n + 1]), 4)
        exp.household_cap = model.household_cap
    exp.vetoes = [label for k, (label, _) in enumerate(parts) if vals[2 * n + 2 + k]]
    exp.vetoed = bool(exp.vetoes)
    exp.match_weight = round(total, 4)
    exp.match_probability = round(1 / (1 + 2 ** (-total)), 6)
    if ws.table_exists(CUTS):
        cut = con.execute(f"SELECT reason, {_trigger_cols(ws)} FROM {CUTS} k WHERE l = ? AND r = ?",
                          [lo, hi]).fetchall()
        if cut:
            exp.split_by = cut[0][0]
            exp.split_trigger = _trigger(ws, spec, *cut[0][1:])
    return exp


def _blocking_rule_of(ws: Workspace, spec: DedupeSpec, lo: int, hi: int) -> int | None:
    """The first blocking rule that made the pair ``(lo, hi)`` a candidate, from the blocking keys the
    prepared table keeps (``bk<j>``) and the same block and rule limits as
    :func:`crmtool.dedupe.blocking.candidate_pairs`; ``None`` when none did.

    For a pair missing from ``dedupe_pairs``: after a Spark run that table keeps only the pairs
    decided or at or above the review band, so a candidate scored below the band is not in it."""
    from crmtool.dedupe.blocking import block_limit, kept_pairs_sql, rule_skipped

    con = ws.con
    have = {r[0] for r in con.execute(f"DESCRIBE {PREP}").fetchall()}
    for j, rule in enumerate(spec.blocking):
        key = f"bk{j}"
        if key not in have:
            return None  # the rules changed since the run: say nothing rather than guess
        limit = block_limit(spec, rule)
        shared = con.execute(
            f"SELECT a.{key} FROM {PREP} a JOIN {PREP} b ON a.{key} = b.{key} WHERE a.__rid = ? AND b.__rid = ?",
            [lo, hi]).fetchall()
        if not shared:
            continue
        pairs, block = con.execute(
            f"SELECT {kept_pairs_sql(limit)}, "
            f"max(n) FILTER (WHERE k = ?) FROM (SELECT {key} AS k, count(*) AS n FROM {PREP} "
            f"WHERE {key} IS NOT NULL GROUP BY {key})", [shared[0][0]]).fetchall()[0]
        if block is not None and block <= limit and not rule_skipped(spec, int(pairs)):
            return j
    return None


#: why the chaining guard found a cluster suspect (``why`` of ``dedupe_cuts``), in words
WHY_WORDS = {
    "no-match": "were decided no-match",
    "split_below": "score below split_below",
    "household": "were stopped by the household veto (home evidence at its cap, no person-level agreement)",
    "veto": "were stopped by a veto other than the names, with nothing besides the names for them",
    "max_cluster_size": "the cluster was larger than max_cluster_size",
}


def _trigger_cols(ws: Workspace) -> str:
    """Select items of the trigger of a cut (NULL in a workspace written before cuts named it)."""
    have = {r[0] for r in ws.con.execute(f"DESCRIBE {CUTS}").fetchall()}
    if "why" not in have:
        return "NULL, NULL, NULL"
    return ("k.why, (SELECT __id FROM " + PREP + " WHERE __rid = k.bad_l), "
            "(SELECT __id FROM " + PREP + " WHERE __rid = k.bad_r)")


def _trigger(ws: Workspace, spec: DedupeSpec, why: str | None, bad_a: str | None, bad_b: str | None) -> str | None:
    """``'records A and B score below split_below; vetoed by: ...'``: what made the guard split the cluster."""
    if why is None:
        return None
    words = WHY_WORDS.get(why, why)
    if bad_a is None or bad_b is None:
        return words
    text = f"records {bad_a} and {bad_b} {words}"
    # and the vetoes that fire on that pair (a pair bad enough to split a cluster is never an edge, so it
    # was never cut itself: this explain does not come back here)
    fired = explain(ws, spec, bad_a, bad_b).vetoes
    if fired:
        text += f"; vetoed by: {'; '.join(fired)}"
    return text


#: pairs listed per kind for one record (the rest are not shown)
ONE_RECORD_LIMIT = 20


def _one_record(ws: Workspace, spec: DedupeSpec, model: Model, one: int, exp: Explanation) -> None:
    """Best pairs of record ``one``, the chaining-guard cuts that touch it, and its vetoed pairs in or above
    the review band with the vetoes that fired (evaluated on the stored levels of ``dedupe_pairs``)."""
    con = ws.con
    other = f"JOIN {PREP} o ON o.__rid = CASE WHEN k.l = $1 THEN k.r ELSE k.l END WHERE (k.l = $1 OR k.r = $1)"
    exp.neighbours = [(str(i), float(p)) for i, p in con.execute(
        f"SELECT o.__id, k.match_probability FROM {PAIRS} k {other} "
        "ORDER BY k.match_probability DESC, o.__id LIMIT 10", [one]).fetchall()]
    if ws.table_exists(CUTS):
        exp.cuts = [(str(i), str(r), _trigger(ws, spec, *t)) for i, r, *t in con.execute(
            f"SELECT o.__id, k.reason, {_trigger_cols(ws)} FROM {CUTS} k {other} ORDER BY o.__id "
            f"LIMIT {ONE_RECORD_LIMIT}", [one]).fetchall()]
    pair_cols = {r[0] for r in con.execute(f"DESCRIBE {PAIRS}").fetchall()}
    tf_cols = {i: f"tf{i}" for i in range(len(spec.comparisons)) if f"tf{i}" in pair_cols}
    parts = veto_parts(spec, model, tf_cols)
    if not parts or "vetoed" not in pair_cols:
        return
    fired = ", ".join(f"({sql}) AS v{k}" for k, (_, sql) in enumerate(parts))
    rows = con.execute(
        f"SELECT o.__id, k.match_probability, {fired} FROM {PAIRS} k {other} AND k.vetoed "
        f"AND k.match_probability >= {float(spec.review)} "
        f"ORDER BY k.match_probability DESC, o.__id LIMIT {ONE_RECORD_LIMIT}", [one]).fetchall()
    exp.vetoed_pairs = [(str(r[0]), float(r[1]), [label for k, (label, _) in enumerate(parts) if r[2 + k]])
                        for r in rows]
