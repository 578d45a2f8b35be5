"""``national_id``: Spanish NIF/DNI, NIE and CIF with their check letters (python-stdnum).

``type``: ``nif`` (DNI, NIE and the K/L/M forms), ``nie``, ``cif``, or ``any`` (default). The
check runs once per distinct value. ``action: fix`` writes the compact form (``12345678-z`` ->
``12345678Z``).
"""

from functools import lru_cache
from typing import Any, ClassVar

from crmtool.kinds.base import FixPlan, Kind, PlanContext, RuleSpec, failing_rows
from crmtool.kinds.es_id_sql import es_id_fast_sql
from crmtool.sqltext import ident


@lru_cache(maxsize=500_000)
def es_id_verdict(value: str, kind: str) -> tuple[str | None]:
    from stdnum.es import cif, dni, nie, nif

    modules = {"nif": [nif], "dni": [dni], "nie": [nie], "cif": [cif], "any": [nif, cif]}[kind]
    for module in modules:
        try:
            return (module.validate(value),)
        except Exception:  # stdnum raises ValidationError subclasses (and ValueError on odd input)
            continue
    return (None,)


class NationalId(Kind):
    name = "national_id"
    summary = "Spanish NIF/DNI, NIE or CIF with a correct check letter (python-stdnum)."
    options_schema: ClassVar[dict[str, Any]] = {"type": {"enum": ["nif", "dni", "nie", "cif", "any"]}}
    actions = ("fix", "flag", "reject")

    def _map(self, ctx: PlanContext, spec: RuleSpec, column: str) -> str:
        kind = spec.opt("type", "any")
        fast = {"compact": es_id_fast_sql("v")} if kind in ("nif", "any") else None
        table = ctx.map_distinct(f"t.{ident(column)}", lambda v: es_id_verdict(v, kind), [("compact", "VARCHAR")],
                                 ("es_id", kind), fast=fast)
        # the fast path marks a certainly wrong check letter with ''
        ctx.con.execute(f"UPDATE {table} SET compact = NULL WHERE compact = ''")
        return table

    def fix(self, ctx: PlanContext, spec: RuleSpec, column: str) -> FixPlan | None:
        if spec.action != "fix":
            return None
        c = f"t.{ident(column)}"
        return FixPlan(f"coalesce(m.compact, {c})", f"LEFT JOIN {self._map(ctx, spec, column)} m ON m.value = {c}")

    def check(self, ctx: PlanContext, spec: RuleSpec) -> str:
        column = spec.columns[0]
        c = f"t.{ident(column)}"
        label = {"nif": "NIF", "dni": "DNI", "nie": "NIE", "cif": "CIF", "any": "NIF/NIE/CIF"}[spec.opt("type", "any")]
        return failing_rows(ctx, column, f"trim({c}) <> '' AND m.compact IS NULL", f"'not a valid {label}'",
                            f"LEFT JOIN {self._map(ctx, spec, column)} m ON m.value = {c}")
