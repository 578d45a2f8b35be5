"""Fellegi–Sunter scoring: match weight = log2 prior odds + sum over comparisons of log2(m / u).

* ``u`` (probability of each level among *non*-matching pairs) from random record pairs;
* ``m`` (among matching pairs) and the prior (share of candidate pairs that match) by
  expectation–maximisation over the candidate pairs' level patterns, ``u`` held fixed (as Splink does);
* term frequency: at the exact level of a ``term_frequency`` comparison, ``u`` is the value's own
  frequency, so a match on a rare surname weighs more than one on "garcia";
* or fixed, user-set weights (bits) per level.

The EM runs on the distinct level patterns with their counts (a few hundred rows), not on the pairs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crmtool.dedupe.compare import compute_levels
from crmtool.dedupe.prepare import Prepared
from crmtool.dedupe.spec import DedupeSpec
from crmtool.sqltext import ident

if TYPE_CHECKING:
    import duckdb


@dataclass
class CompModel:
    name: str
    levels: tuple[str, ...]
    m: list[float]
    u: list[float]
    weights: list[float]
    term_frequency: bool = False


#: the layout of a saved model: 1 before the household group (no ``format`` key), 2 with it, 3 since the
#: email's fuzzy level compares the local part without the names (its m was learnt for another level).
#: A model of another format, or trained under other settings (:func:`settings_hash`), is stale.
MODEL_FORMAT = 3


def settings_hash(spec: DedupeSpec) -> str:
    """A hash of the parts of the dedupe section that shape the model: blocking (EM trains on its
    pairs), comparisons, household group, vetoes, model options and date formats. Threshold, review
    band, cluster limits and survivorship act after scoring and are left out, as are file locations."""
    import dataclasses
    import hashlib

    def plain(x: Any) -> Any:
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x) if f.name != "loc"}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x

    shaping = {k: plain(getattr(spec, k)) for k in ("blocking", "comparisons", "household", "veto", "veto_unless",
                                                     "model", "date_formats")}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Model:
    prior: float
    comparisons: list[CompModel]
    estimate: str
    iterations: int = 0
    tf_floor: float = 1e-6
    #: the household group: indices of its comparisons and the bits their agreements add at most
    household: tuple[int, ...] = ()
    household_cap: float | None = None
    format: int = MODEL_FORMAT
    settings: str = ""  # settings_hash of the spec it was trained for

    def stale_for(self, spec: DedupeSpec) -> str | None:
        """Why this (saved) model cannot score ``spec``'s pairs, or None when it can."""
        if self.format != MODEL_FORMAT:
            return f"it was saved in model format {self.format}, this version reads format {MODEL_FORMAT}"
        if self.settings != settings_hash(spec):
            return "the dedupe section changed since it was trained"
        return None

    @property
    def prior_weight(self) -> float:
        return math.log2(self.prior / (1 - self.prior))

    def to_json(self) -> str:
        return json.dumps(
            {
                "prior": self.prior,
                "estimate": self.estimate,
                "iterations": self.iterations,
                "tf_floor": self.tf_floor,
                "household": list(self.household),
                "household_cap": self.household_cap,
                "format": self.format,
                "settings": self.settings,
                "comparisons": [c.__dict__ for c in self.comparisons],
            },
            sort_keys=True,
            default=list,
        )

    @classmethod
    def from_json(cls, text: str) -> Model:
        raw: dict[str, Any] = json.loads(text)
        comps = [
            CompModel(c["name"], tuple(c["levels"]), c["m"], c["u"], c["weights"], c["term_frequency"])
            for c in raw["comparisons"]
        ]
        return cls(raw["prior"], comps, raw["estimate"], raw["iterations"], raw["tf_floor"],
                   tuple(raw.get("household", ())), raw.get("household_cap"), int(raw.get("format", 1)),
                   str(raw.get("settings", "")))


def _weights(m: list[float], u: list[float]) -> list[float]:
    return [round(math.log2(max(a, 1e-12) / max(b, 1e-12)), 6) for a, b in zip(m, u, strict=True)]


def hex_int_sql(hex15: str, dialect: str) -> str:
    """SQL of the BIGINT (below 2**60) that 15 hex digits ``hex15`` spell, on DuckDB or Spark."""
    if dialect == "spark":  # written in DuckDB's dialect for the transpiler; conv() passes through
        return f"CAST(conv({hex15}, 16, 10) AS BIGINT)"
    return f"CAST('0x' || {hex15} AS BIGINT)"


def u_sample_sql(n: int, k: int, seed: int, dialect: str) -> str:
    """SELECT of about ``k`` distinct random record pairs ``(l, r)``, ``l < r``, of ``n`` records:
    draw ``i`` (0..k-1) picks the records that hex digits 1-15 and 16-30 of ``sha256('<i>:<seed>')``
    give mod ``n``. The same pairs on DuckDB (``sha256``) and Spark (``sha2(x, 256)``), unlike either
    engine's ``hash()``; one digest per draw (hashing is most of the sample's cost)."""
    def pick(start: int) -> str:
        return f"CAST({hex_int_sql(f'substr(h, {start}, 15)', dialect)} % {n} AS INTEGER)"

    return f"""SELECT DISTINCT least(a, b) AS l, greatest(a, b) AS r FROM (
                SELECT {pick(1)} AS a, {pick(16)} AS b FROM (
                    SELECT sha256(CAST(i AS VARCHAR) || ':{seed}') AS h
                    FROM (SELECT unnest(generate_series(0, {k - 1})) AS i) t) d) p WHERE a <> b"""


def u_pairs_sql(n: int, spec: DedupeSpec, dialect: str) -> str:
    """SELECT of the random record pairs ``(l, r)`` the u values are counted on: every pair of a small
    table, else :func:`u_sample_sql` (small tables need fewer)."""
    total_pairs = n * (n - 1) // 2
    k = min(spec.model.u_pairs, total_pairs, max(50_000, 20 * n))
    if total_pairs <= k:
        ids = f"(SELECT CAST(i AS INTEGER) AS i FROM (SELECT unnest(generate_series(0, {n - 1})) AS i) t)"
        return f"SELECT a.i AS l, b.i AS r FROM {ids} a JOIN {ids} b ON a.i < b.i"
    return u_sample_sql(n, k, spec.model.seed, dialect)


def u_level_counts_sql(levels_table: str, index: int) -> str:
    """SELECT of (level, pairs) of comparison ``index`` over a levels table."""
    return f"SELECT g{index}, count(*) FROM {levels_table} WHERE g{index} IS NOT NULL GROUP BY g{index}"


def u_from_counts(spec: DedupeSpec, counts: list[dict[int, int]]) -> list[list[float]]:
    """Each comparison's level frequencies among the random pairs, smoothed so no level has u = 0."""
    out: list[list[float]] = []
    for c, got in zip(spec.comparisons, counts, strict=True):
        levels = len(c.levels)
        total = sum(got.values())
        out.append([(got.get(j, 0) + 1) / (total + levels) for j in range(levels)])
    return out


def estimate_u(con: duckdb.DuckDBPyConnection, prep: Prepared, spec: DedupeSpec) -> list[list[float]]:
    """Level frequencies among random record pairs (smoothed so no level has u = 0)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE __dd_upairs AS {u_pairs_sql(prep.rows, spec, 'duckdb')}")
    compute_levels(con, prep, spec, "__dd_upairs", "__dd_ulevels", temp=True)
    counts = [{int(k): int(v) for k, v in con.execute(u_level_counts_sql("__dd_ulevels", i)).fetchall()}
              for i in range(len(spec.comparisons))]
    con.execute("DROP TABLE IF EXISTS __dd_ulevels; DROP TABLE IF EXISTS __dd_upairs")
    return u_from_counts(spec, counts)


#: strength (in pairs) of the starting m values, so that a handful of pairs cannot make m degenerate
PSEUDO_PAIRS = 5.0


def _initial_m(levels: int) -> list[float]:
    raw = [0.8] + [0.15 / max(levels - 2, 1)] * (levels - 2) + [0.05]
    s = sum(raw)
    return [x / s for x in raw]


def run_em(
    patterns: Any, counts: Any, u: list[list[float]], max_iterations: int, prior: float | None = None,
    home: tuple[int, ...] = (), person: tuple[int, ...] = (),
) -> tuple[list[list[float]], float, int]:
    """EM over level patterns (``-1`` = missing) with u fixed: returns (m, prior, iterations).

    ``home``: the household group's comparisons (indices into the patterns). Their agreements count as
    one fact in the E step too, capped at the group's strongest single agreement, as in scoring: else
    people who share a home look like matches and teach the model that disagreeing names and birth
    dates are common among matches. ``person``: the person-level comparisons; a pair whose home evidence
    reaches the cap while every person comparison present disagrees counts as a non-match (the household
    veto, applied while learning too)."""
    import numpy as np

    n_comp = len(u)
    m = [_initial_m(len(levels)) for levels in u]
    m0 = [list(x) for x in m]
    lam = prior if prior is not None else 0.3
    w = np.asarray(counts, dtype=float)
    g = np.asarray(patterns, dtype=np.int64).reshape(len(w), n_comp)
    it = 0
    not_person = np.zeros(len(w), dtype=bool)
    if home and person:
        agree = np.zeros(len(w), dtype=bool)
        differ = np.zeros(len(w), dtype=bool)
        for c in person:
            last = len(u[c]) - 1
            agree |= (g[:, c] >= 0) & (g[:, c] < last)
            differ |= g[:, c] == last
        not_person = differ & ~agree
    for it in range(1, max_iterations + 1):  # noqa: B007 - reported
        log_bf = np.zeros(len(w))
        home_bf = np.zeros(len(w))
        for c in range(n_comp):
            col = g[:, c]
            present = col >= 0
            bf = np.log(np.asarray(m[c]))[col[present]] - np.log(np.asarray(u[c]))[col[present]]
            if c in home:
                home_bf[present] += np.maximum(bf, 0)
                bf = np.minimum(bf, 0)
            log_bf[present] += bf
        if home:
            cap = max(max(math.log(m[c][0] / u[c][0]), 0.0) for c in home)
            log_bf += np.minimum(home_bf, cap)
        post = 1.0 / (1.0 + np.exp(-np.clip(math.log(lam / (1 - lam)) + log_bf, -700, 700)))
        if home:
            post[not_person & (home_bf >= cap)] = 0.0
        wp = w * post
        new_lam = float((wp.sum() + 0.5) / (w.sum() + 1)) if prior is None else lam
        new_lam = min(max(new_lam, 1e-9), 1 - 1e-9)
        delta = abs(new_lam - lam)
        new_m: list[list[float]] = []
        for c in range(n_comp):
            col = g[:, c]
            levels = len(u[c])
            counted = np.bincount(col[col >= 0], weights=wp[col >= 0], minlength=levels)
            sums = counted + PSEUDO_PAIRS * np.asarray(m0[c])  # a weak prior: tiny data keeps sane m
            mc = (sums / sums.sum()).tolist()
            delta = max(delta, max(abs(x - y) for x, y in zip(mc, m[c], strict=True)))
            new_m.append(mc)
        m, lam = new_m, new_lam
        if delta < 1e-6:
            break
    return m, lam, it


def population_prior(patterns: Any, counts: Any, m: list[list[float]], u: list[list[float]],
                     total_pairs: int, home: tuple[int, ...] = (), cap: float | None = None) -> float:
    """Probability that two random records match, self-consistent with the candidate pairs' scores.

    Fixed point of ``prior = sum(P(match | pattern, prior) * count) / total_pairs`` (blocking is assumed
    to find nearly every match, as with any blocking)."""
    import numpy as np

    g = np.asarray(patterns, dtype=np.int64).reshape(len(counts), len(u))
    w = np.asarray(counts, dtype=float)
    log_bf = np.zeros(len(w))
    home_bf = np.zeros(len(w))
    for c in range(len(u)):
        col = g[:, c]
        present = col >= 0
        bf = np.log(np.asarray(m[c]))[col[present]] - np.log(np.asarray(u[c]))[col[present]]
        if c in home and cap is not None:  # the household group: agreements as one fact (as scored)
            home_bf[present] += np.maximum(bf, 0)
            bf = np.minimum(bf, 0)
        log_bf[present] += bf
    if cap is not None:
        log_bf += np.minimum(home_bf, cap * math.log(2))
    lam = min(max(float(w.sum()) / max(total_pairs, 1) * 0.5, 1e-12), 0.5)
    for _ in range(100):
        odds = np.log(lam / (1 - lam)) + log_bf
        post = 1.0 / (1.0 + np.exp(-np.clip(odds, -700, 700)))
        new = min(max(float((w * post).sum()) / max(total_pairs, 1), 1e-12), 0.999)
        if abs(new - lam) < 1e-12 + 1e-6 * lam:
            lam = new
            break
        lam = new
    return lam


def estimate(con: duckdb.DuckDBPyConnection, prep: Prepared, spec: DedupeSpec, levels_table: str) -> Model:
    """The model for ``spec``: fixed weights as given, or u from random pairs and m by EM.

    EM runs once per blocking rule on the pairs that rule found, *without* the comparisons of the
    columns the rule blocks on (they agree by construction there, so they would bias m), as Splink's
    training sessions do; each comparison's m is the average over the sessions that estimated it,
    weighted by their expected matches. The prior is then the probability that two random records
    match, consistent with the scores of all candidate pairs.
    """
    if spec.model.estimate == "fixed":
        return fixed_model(spec)
    u = estimate_u(con, prep, spec)
    rows = con.execute(patterns_sql(ident(levels_table), len(spec.comparisons))).fetchall()
    return estimate_from(u, rows, prep, spec)


def fixed_model(spec: DedupeSpec) -> Model:
    """The model of ``estimate: fixed``: the weights as the section gives them."""
    comps = [CompModel(c.name, c.levels, [], [], list(c.weights or ()), False) for c in spec.comparisons]
    return with_household(Model(spec.model.prior or 0.5, comps, "fixed"), spec)


def patterns_sql(levels_table: str, n_comp: int) -> str:
    """SELECT of the blocked pairs' level patterns: (rules, g0..gk with -1 for missing, pairs), in order."""
    gs = ", ".join(f"coalesce(g{i}, -1)" for i in range(n_comp))
    by = ", ".join(str(k) for k in range(1, n_comp + 2))
    return f"SELECT rules, {gs}, count(*) FROM {levels_table} WHERE rule >= 0 GROUP BY {by} ORDER BY {by}"


def estimate_from(u: list[list[float]], rows: list[tuple[Any, ...]], prep: Prepared, spec: DedupeSpec) -> Model:
    """The EM model from the random pairs' ``u`` and the blocked pairs' level patterns ``rows``
    (:func:`patterns_sql`), on whichever engine counted them: see :func:`estimate`."""
    import numpy as np

    n_comp = len(spec.comparisons)
    m_sum = [np.zeros(len(x)) for x in u]
    m_weight = [0.0] * n_comp
    iterations = 0
    for j, rule in enumerate(spec.blocking):
        sel = [r for r in rows if r[0] & (1 << j)]
        if sum(r[-1] for r in sel) < 20:
            continue
        blocked = {col for col, _ in rule.terms}
        keep = [i for i, c in enumerate(spec.comparisons) if c.column not in blocked]
        if not keep:
            continue
        patterns = [[r[1 + i] for i in keep] for r in sel]
        counts = [r[-1] for r in sel]
        home = tuple(k for k, i in enumerate(keep) if spec.comparisons[i].name in spec.household.comparisons)
        person = tuple(k for k, i in enumerate(keep) if spec.comparisons[i].name in spec.household.person)
        m_j, lam_j, it = run_em(patterns, counts, [u[i] for i in keep], spec.model.max_iterations, home=home,
                                person=person)
        iterations += it
        expected = lam_j * sum(counts)
        for k, i in enumerate(keep):
            m_sum[i] += expected * np.asarray(m_j[k])
            m_weight[i] += expected
    m = [(m_sum[i] / m_weight[i]).tolist() if m_weight[i] > 0 else _initial_m(len(u[i])) for i in range(n_comp)]
    comps = [
        CompModel(c.name, c.levels, [round(x, 8) for x in m[i]], [round(x, 8) for x in u[i]],
                  _weights(m[i], u[i]), c.term_frequency)
        for i, c in enumerate(spec.comparisons)
    ]
    model = with_household(Model(0.5, comps, "em", iterations, 1.0 / max(prep.rows, 1)), spec)
    total_pairs = prep.rows * (prep.rows - 1) // 2
    if spec.model.prior is not None:
        model.prior = spec.model.prior
    elif rows:
        model.prior = population_prior([r[1:-1] for r in rows], [r[-1] for r in rows], m, u, total_pairs,
                                       model.household, model.household_cap)
    else:
        model.prior = 1.0 / max(prep.rows, 2)
    return model


def with_household(model: Model, spec: DedupeSpec) -> Model:
    """Set the household group of ``model``: its comparisons and cap (``max_weight``, or the strongest
    single agreement of the group, so that the group weighs as one fact)."""
    index = [i for i, c in enumerate(spec.comparisons) if c.name in spec.household.comparisons]
    model.household = tuple(index)
    model.settings = settings_hash(spec)
    if not index:
        model.household_cap = None
    elif spec.household.max_weight is not None:
        model.household_cap = float(spec.household.max_weight)
    else:
        model.household_cap = round(max(max(model.comparisons[i].weights, default=0.0) for i in index), 6)
    return model


def weight_sql(model: Model, index: int, tf_column: str | None) -> str:
    """Match weight (bits) of comparison ``index`` from its level ``g<index>`` (0 when missing)."""
    c = model.comparisons[index]
    whens = []
    for k, w in enumerate(c.weights):
        if k == 0 and tf_column and c.term_frequency and c.m:
            whens.append(
                f"WHEN 0 THEN log2({c.m[0]} / greatest(coalesce({tf_column}, {c.u[0]}), {model.tf_floor}))"
            )
        else:
            whens.append(f"WHEN {k} THEN {w}")
    return f"(CASE g{index} {' '.join(whens)} ELSE 0 END)"


def household_raw_sql(model: Model, tf_columns: dict[int, str]) -> str:
    """Sum of the household group's agreeing (positive) weights, before the cap (0 without a group)."""
    parts = [f"greatest({weight_sql(model, i, tf_columns.get(i))}, 0)" for i in model.household]
    return f"({' + '.join(parts)})" if parts else "0"


def total_sql(model: Model, tf_columns: dict[int, str]) -> str:
    """Match weight (bits): the prior, every comparison's weight, the household group's agreements
    counted as one fact (capped at ``household_cap``), its disagreements as they are."""
    home = set(model.household)
    terms = [repr(model.prior_weight)]
    for i in range(len(model.comparisons)):
        w = weight_sql(model, i, tf_columns.get(i))
        terms.append(f"least({w}, 0)" if i in home and model.household_cap is not None else w)
    if home and model.household_cap is not None:
        terms.append(f"least({household_raw_sql(model, tf_columns)}, {model.household_cap})")
    return " + ".join(terms)


def score_sql(model: Model, tf_columns: dict[int, str]) -> str:
    """``match_weight`` and ``match_probability`` select items over a levels table."""
    total = total_sql(model, tf_columns)
    return (
        f"CAST({total} AS DOUBLE) AS match_weight, "
        f"CAST(1 / (1 + pow(2, -({total}))) AS DOUBLE) AS match_probability"
    )
