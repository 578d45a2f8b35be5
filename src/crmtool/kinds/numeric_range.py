"""``range``: the value is a number within ``min``/``max`` (decimal comma accepted)."""

import math
from typing import Any, ClassVar

from crmtool.kinds.base import Kind, PlanContext, RuleSpec, failing_rows
from crmtool.sqltext import ident


class NumericRange(Kind):
    name = "range"
    summary = "The value must be a number between min and max (inclusive); blanks are skipped."
    options_schema: ClassVar[dict[str, Any]] = {"min": {"type": "number"}, "max": {"type": "number"}}
    columns = "many"

    def problems(self, spec: RuleSpec) -> list[str]:
        # YAML's .inf / .nan are numbers to the schema but not bounds SQL can compare with
        return [f"{bound}: {spec.opt(bound)!r} is not a finite number" for bound in ("min", "max")
                if spec.opt(bound) is not None and not math.isfinite(float(spec.opt(bound)))]

    def checks_value_only(self, spec: RuleSpec) -> bool:
        return True

    def check(self, ctx: PlanContext, spec: RuleSpec) -> str:
        parts = []
        for col in spec.columns:
            c = f"trim(CAST(t.{ident(col)} AS VARCHAR))"
            text = f"CASE WHEN {c} LIKE '%,%' THEN replace({c}, '.', '') ELSE {c} END"
            num = f"try_cast(replace({text}, ',', '.') AS DOUBLE)"
            whens = [f"WHEN {num} IS NULL THEN 'not a number'"]
            if spec.opt("min") is not None:
                whens.append(f"WHEN {num} < {float(spec.opt('min'))!r} THEN 'below {spec.opt('min')}'")
            if spec.opt("max") is not None:
                whens.append(f"WHEN {num} > {float(spec.opt('max'))!r} THEN 'above {spec.opt('max')}'")
            reason = "CASE " + " ".join(whens) + " END"
            rows = failing_rows(ctx, col, f"{c} <> ''", reason)
            parts.append(f"SELECT * FROM ({rows}) WHERE reason IS NOT NULL")
        return " UNION ALL ".join(parts)
