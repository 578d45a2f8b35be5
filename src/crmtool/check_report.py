"""What ``validate`` (and the checking half of ``clean``) found: the rule outcomes, the
unparseable-rows check, a few example record keys per failing rule, in the shape every renderer
reads (text, JSON with ``schema_version``, JUnit, manifest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crmtool.engine import EngineResult
from crmtool.io.readers import LoadResult
from crmtool.rulefile import RuleSet
from crmtool.schemas import RESULTS_SCHEMA_VERSION
from crmtool.sqltext import ident
from crmtool.status import Status
from crmtool.workspace import Workspace

#: the check of unparseable rows, reported like a rule (its own JUnit test case)
PARSE_CHECK = "unparseable_rows"
#: how many example record keys a failing rule shows
EXAMPLE_KEYS = 5


def parse_check(ruleset: RuleSet, loaded: LoadResult, seconds: float = 0.0) -> dict[str, Any]:
    """The rows the reader could not parse, against the rule set's ``dataset.max_unparseable``
    (default 0: any unparseable row fails the run), in the shape of a rule's result."""
    dataset = ruleset.dataset
    failed = len(loaded.parse_rejects)
    checked = loaded.rows + failed
    status = Status.FAIL if dataset.max_unparseable.exceeded(failed, checked) else Status.PASS
    reasons: dict[str, int] = {}
    for reject in loaded.parse_rejects:
        kind = reject.reason.split(":", 1)[0]
        reasons[kind] = reasons.get(kind, 0) + 1
    return {
        "rule": PARSE_CHECK, "kind": "parse", "severity": "error", "action": "reject", "columns": [],
        "threshold": str(dataset.max_unparseable), "checked": checked, "failed": failed,
        "failed_share": round(failed / checked, 6) if checked else 0.0, "fixed": 0, "rejected": failed,
        "status": str(status), "reasons": dict(sorted(reasons.items())),
        "sample_rows": [], "example_lines": [r.line for r in loaded.parse_rejects[:EXAMPLE_KEYS]],
        "source": str(dataset.loc or "dataset.max_unparseable (default 0)"), "seconds": round(seconds, 4),
    }


@dataclass
class CheckReport:
    """Result of validate (and the checking half of clean)."""

    run_id: str
    input: LoadResult
    engine: EngineResult
    ruleset: RuleSet
    parse: dict[str, Any] = field(default_factory=dict)
    #: a few record keys (the dataset key, else the row number) per failing or warning rule
    examples: dict[str, list[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.engine.failed or self.parse.get("status") == Status.FAIL

    @property
    def status(self) -> Status:
        if self.failed:
            return Status.FAIL
        return Status.WARN if any(o.status == Status.WARN for o in self.engine.outcomes) else Status.PASS

    def rule_results(self) -> list[dict[str, Any]]:
        """Every check: unparseable rows first, then the rules in file order."""
        rules = [o.as_dict() for o in self.engine.outcomes]
        for r in rules:
            if r["rule"] in self.examples:
                r["example_keys"] = self.examples[r["rule"]]
        return ([self.parse] if self.parse else []) + rules

    command = "validate"  # the command whose result this is (CleanResult: clean)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema_version": RESULTS_SCHEMA_VERSION,
            "command": self.command,
            "run_id": self.run_id,
            "input": str(self.input.path),
            "detected": {"format": self.input.format, "encoding": self.input.encoding,
                         "delimiter": self.input.delimiter},
            "rows": self.engine.rows,
            "parse_rejects": len(self.input.parse_rejects),
            "record_key": self.ruleset.dataset.key or "_row",
            "rules": self.rule_results(),
            "timings_seconds": self.timings,
            "status": str(self.status),
        }


def example_keys(ws: Workspace, ruleset: RuleSet, loaded: LoadResult, engine: EngineResult,
                 limit: int = EXAMPLE_KEYS) -> dict[str, list[str]]:
    """Record keys (never other values) of a few failing rows of each failing or warning rule."""
    wanted = [(o.spec.name, row) for o in engine.outcomes if o.status != Status.PASS for row in o.sample_rows[:limit]]
    if not wanted:
        return {}
    key = ruleset.dataset.key
    if not key or key not in loaded.columns:
        out: dict[str, list[str]] = {}
        for name, row in wanted:
            out.setdefault(name, []).append(f"row {row}")
        return out
    # a few pairs as two list parameters (not an Arrow table: a small validate imports no pyarrow)
    rows = ws.con.execute(f"SELECT e.rule, CAST(d.{ident(key)} AS VARCHAR) FROM "
                          f"(SELECT unnest(CAST(? AS VARCHAR[])) AS rule, unnest(CAST(? AS BIGINT[])) AS _row) e "
                          f"JOIN {ident(loaded.table)} d USING (_row) ORDER BY e.rule, e._row",
                          [[w[0] for w in wanted], [w[1] for w in wanted]]).fetchall()
    found: dict[str, list[str]] = {}
    for name, value in rows:
        found.setdefault(name, []).append("(blank)" if value is None else str(value))
    return found
