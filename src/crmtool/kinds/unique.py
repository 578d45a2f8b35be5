"""``unique``: a key (one or several columns) appears once.

With ``action: reject`` the first row of each key (in file order) stays and the later ones are
rejected; with ``flag`` every row of a repeated key is reported. Blank keys are skipped.

``flag`` finds the repeated keys with one GROUP BY (blank keys dropped after grouping, on the
few repeated ones) and reports their rows by a semi-join: at 1M rows with 1,000 repeated ids
~20% less CPU than a ``count(*) OVER (PARTITION BY key)`` window, which sorts every row
(issue 19, ``python bench/validate_peers.py``). ``reject`` keeps the ``row_number()`` window:
its join-back form (GROUP BY with ``min(_row)``, then a join) measured slower.
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
        if spec.action != "reject":
            # a key's rows match a repeated key only when equal to it, so the blank test (and NULL,
            # which never equals) needs no repeating on the rows
            cols = ", ".join(ident(c) for c in spec.columns)
            on = " AND ".join(f"t.{ident(c)} = k.{ident(c)}" for c in spec.columns)
            filled = " AND ".join(f"trim(CAST({ident(c)} AS VARCHAR)) <> ''" for c in spec.columns)
            repeated = f"SELECT {cols} FROM {ident(ctx.table)} GROUP BY {cols} HAVING count(*) > 1 AND {filled}"
            return (f"SELECT t._row, {label} AS \"column\", 'key appears more than once' AS reason "
                    f"FROM {ident(ctx.table)} t SEMI JOIN ({repeated}) k ON {on}")
        rank = f"row_number() OVER (PARTITION BY {key} ORDER BY t._row)"
        return (f"SELECT _row, {label} AS \"column\", 'repeats the key of an earlier row' AS reason FROM "
                f"(SELECT t._row, {rank} AS n FROM {ident(ctx.table)} t WHERE {nonblank}) WHERE n > 1")
