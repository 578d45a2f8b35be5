"""``unique``: a key (one or several columns) appears once.

With ``action: reject`` the first row of each key (in file order) stays and the later ones are
rejected; with ``flag`` every row of a repeated key is reported. Blank keys are skipped.
"""

from crmtool.kinds.base import Kind, PlanContext, RuleSpec
from crmtool.sqltext import ident, sql_str


class Unique(Kind):
    name = "unique"
    summary = "The key (one or more columns) must be unique; reject keeps the first occurrence."
    columns = "many"

    def check(self, ctx: PlanContext, spec: RuleSpec) -> str:
        key = ", ".join(f"t.{ident(c)}" for c in spec.columns)
        nonblank = " AND ".join(f"trim(CAST(t.{ident(c)} AS VARCHAR)) <> ''" for c in spec.columns)
        label = sql_str("+".join(spec.columns))
        if spec.action == "reject":
            cond = "n > 1"
            rank = f"row_number() OVER (PARTITION BY {key} ORDER BY t._row)"
            reason = "'repeats the key of an earlier row'"
        else:
            cond = "n > 1"
            rank = f"count(*) OVER (PARTITION BY {key})"
            reason = "'key appears more than once'"
        return (f"SELECT _row, {label} AS \"column\", {reason} AS reason FROM "
                f"(SELECT t._row, {rank} AS n FROM {ident(ctx.table)} t WHERE {nonblank}) WHERE {cond}")
