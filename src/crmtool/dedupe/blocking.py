"""Blocking: candidate pairs are the record pairs that share the key of at least one blocking rule.

Each rule's pair count is computed from its block sizes (``n * (n - 1) / 2``) *before* any pair is
made, so an exploding rule is reported and capped: blocks larger than ``max_block_size`` are
skipped, and a rule still above ``max_pairs_per_rule`` is skipped entirely, both with a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crmtool.dedupe.prepare import Prepared
from crmtool.dedupe.spec import BlockingRule, DedupeSpec
from crmtool.sqltext import ident

if TYPE_CHECKING:
    from crmtool.backend.base import Backend


@dataclass
class RuleCount:
    """What one blocking rule makes: pairs counted before the work, blocks skipped, pairs kept."""

    rule: str
    keyed_records: int
    pairs: int
    skipped_blocks: int = 0
    skipped_pairs: int = 0
    skipped_rule: bool = False
    new_pairs: int = 0

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def block_limit(spec: DedupeSpec, rule: BlockingRule) -> int:
    """The most records a block of ``rule`` may hold and still make pairs."""
    return rule.max_block_size or spec.max_block_size


def kept_pairs_sql(limit: int) -> str:
    """SQL aggregate over a rule's blocks ``(k, n)``: the pairs its blocks of at most ``limit`` records make."""
    return f"coalesce(sum(CASE WHEN n <= {int(limit)} THEN n * (n - 1) / 2 END), 0)"


def rule_skipped(spec: DedupeSpec, pairs: int) -> bool:
    """Whether a rule that would make ``pairs`` pairs is skipped (``max_pairs_per_rule``)."""
    return pairs > spec.max_pairs_per_rule


def candidate_pairs(
    backend: Backend,
    prep: Prepared,
    spec: DedupeSpec,
    out_table: str,
    *,
    warn: Callable[[str], None] | None = None,
    fresh_only: bool = False,
    source: str | None = None,
) -> list[RuleCount]:
    """Create ``out_table(l, r, rule, rules)`` with ``l < r`` (record ordinals), the first rule that
    found the pair and a bit per rule that did, as named SELECT steps on ``backend`` (the workspace's
    DuckDB, or Spark with the prepared table staged as ``source``; default ``prep.table``).

    With ``fresh_only`` the prepared table has a ``__fresh`` column and only pairs with at least one
    fresh record are made (incremental runs).
    """
    counts: list[RuleCount] = []
    selects: list[str] = []
    p = ident(source or prep.table)
    for j, rule in enumerate(spec.blocking):
        key = prep.block_keys[j]
        limit = block_limit(spec, rule)
        fresh = ", bool_or(__fresh) AS fresh" if fresh_only else ""
        backend.create_table("__dd_blocks", f"SELECT {key} AS k, count(*) AS n{fresh} "
                             f"FROM {p} WHERE {key} IS NOT NULL GROUP BY {key}", keep=True)
        where_fresh = " AND fresh" if fresh_only else ""
        row = backend.fetch(f"""SELECT coalesce(sum(n), 0),
                {kept_pairs_sql(limit)},
                count(*) FILTER (WHERE n > {limit}), coalesce(sum(n * (n - 1) / 2) FILTER (WHERE n >
                    {limit}), 0)
            FROM __dd_blocks WHERE true{where_fresh}""")[0]
        count = RuleCount(rule.name, int(row[0]), int(row[1]), int(row[2]), int(row[3]))
        if count.skipped_blocks and warn:
            warn(
                f"blocking rule '{rule.name}': {count.skipped_blocks} blocks of more than {limit} records "
                f"skipped ({count.skipped_pairs} pairs): the key is too common to block on alone"
            )
        if rule_skipped(spec, count.pairs):
            count.skipped_rule = True
            if warn:
                warn(
                    f"blocking rule '{rule.name}' would make {count.pairs} pairs, above max_pairs_per_rule "
                    f"{spec.max_pairs_per_rule}: rule skipped; make its key more selective"
                )
        counts.append(count)
        if count.skipped_rule or count.pairs == 0:
            continue
        fresh_cond = " AND (a.__fresh OR b.__fresh)" if fresh_only else ""
        backend.create_table(
            f"__dd_keys{j}",
            f"SELECT __rid, {key} AS k{', __fresh' if fresh_only else ''} FROM {p} "
            f"WHERE {key} IN (SELECT k FROM __dd_blocks WHERE n BETWEEN 2 AND {limit})", keep=True)
        selects.append(
            f"SELECT a.__rid AS l, b.__rid AS r, {j} AS rule FROM __dd_keys{j} a "
            f"JOIN __dd_keys{j} b ON a.k = b.k AND a.__rid < b.__rid{fresh_cond}"
        )
    if selects:
        backend.create_table(
            out_table, "SELECT l, r, CAST(min(rule) AS SMALLINT) AS rule, "
            "CAST(bit_or(CAST(1 AS BIGINT) << rule) AS BIGINT) AS rules "
            f"FROM ({' UNION ALL '.join(selects)}) u GROUP BY l, r", keep=True)
    else:
        backend.create_table(out_table, "SELECT CAST(NULL AS INTEGER) AS l, CAST(NULL AS INTEGER) AS r, "
                             "CAST(NULL AS SMALLINT) AS rule, CAST(NULL AS BIGINT) AS rules WHERE false", keep=True)
    for j in range(len(spec.blocking)):
        backend.drop_table(f"__dd_keys{j}")
    backend.drop_table("__dd_blocks")
    found = dict(backend.fetch(f"SELECT rule, count(*) FROM {ident(out_table)} GROUP BY rule"))
    for j, c in enumerate(counts):
        c.new_pairs = int(found.get(j, 0))
    return counts
