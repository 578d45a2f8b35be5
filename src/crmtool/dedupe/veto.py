"""Vetoes: conditions that keep a pair from being merged by the model alone (it goes to review).

* ``veto`` entries: a comparison worse than its allowed level (relatives, twins), lifted when a
  ``veto_unless`` comparison agrees exactly or two other person-level comparisons agree (not at their
  ``else`` level); household evidence never lifts a veto (the spec refuses it);
* the household rule: when the household group (address, postcode, landline, a shared email ...)
  reaches its cap and every person-level comparison present disagrees (first name, birth date, national
  id all at ``else``), the pair is people who share a home, not one person.

Each part has a label, so ``explain`` can name the one that fired.
"""

from __future__ import annotations

from crmtool.dedupe.model import Model, household_raw_sql
from crmtool.dedupe.spec import DedupeSpec

#: other person-level comparisons that must agree to lift a veto (besides an exact ``veto_unless``)
LIFT_AGREEMENTS = 2


def veto_parts(spec: DedupeSpec, model: Model | None, tf_columns: dict[int, str]) -> list[tuple[str, str]]:
    """``(label, SQL condition over g0..gk)`` for every veto that can fire."""
    index = {c.name: i for i, c in enumerate(spec.comparisons)}
    unless = [f"coalesce(g{index[name]} = 0, false)" for name in spec.veto_unless]
    person = [(index[n], len(spec.comparisons[index[n]].levels) - 1) for n in spec.household.person if n in index]
    parts: list[tuple[str, str]] = []
    for name, worst in spec.veto:
        i = index[name]
        # lifted by an exact veto_unless, or by two other person-level comparisons that agree (a garbled
        # first name with the same birth date and national id is one person; twins share one of the two)
        others = [f"CAST(coalesce(g{k} < {last}, false) AS INTEGER)" for k, last in person if k != i]
        lifts = unless + ([f"({' + '.join(others)}) >= {LIFT_AGREEMENTS}"] if len(others) >= LIFT_AGREEMENTS else [])
        lifted = f" AND NOT ({' OR '.join(lifts)})" if lifts else ""
        label = spec.comparisons[i].levels[worst]
        parts.append((f"veto {name} worse than {label}", f"(coalesce(g{i} > {worst}, false){lifted})"))
    if model is not None and model.household and model.household_cap is not None and person:
        high = f"{household_raw_sql(model, tf_columns)} >= {model.household_cap}"
        agrees = " OR ".join(f"coalesce(g{i} < {last}, false)" for i, last in person)
        disagrees = " OR ".join(f"coalesce(g{i} = {last}, false)" for i, last in person)
        parts.append(("household: home evidence at its cap, no person-level agreement",
                      f"({high} AND NOT ({agrees}) AND ({disagrees}))"))
    return parts


#: methods whose veto alone does not split a cluster: a first name the nickname list does not know is
#: still the same person when the records joined through other strong pairs
NAME_METHODS = ("name", "surname", "phonetic")


def split_veto_sql(spec: DedupeSpec, model: Model | None, tf_columns: dict[int, str]) -> str:
    """True when a pair is clearly two people although a cluster may hold both: a ``veto`` entry of a
    comparison that is not a name fires (birth dates that clearly differ, not lifted), no ``veto_unless``
    comparison comes close (a national id one or two typos apart is one person with a mistyped birth
    date), and besides the names the evidence is against a match (the weights of the other comparisons
    add up below zero: no shared address or identifier makes up for the birth date). The chaining guard
    splits a cluster holding such a pair when its score is low too: people of one name who joined one
    cluster through records without a birth date."""
    from crmtool.dedupe.model import total_sql, weight_sql

    index = {c.name: i for i, c in enumerate(spec.comparisons)}
    entries = {f"veto {name} worse than" for name, _ in spec.veto
               if spec.comparisons[index[name]].method not in NAME_METHODS}
    parts = [sql for label, sql in veto_parts(spec, model, tf_columns)
             if any(label.startswith(e + " ") for e in entries)]
    if not parts:
        return "false"
    close = [f"coalesce(g{index[n]} < {len(spec.comparisons[index[n]].levels) - 1}, false)" for n in spec.veto_unless]
    cond = f"({' OR '.join(parts)})" + (f" AND NOT ({' OR '.join(close)})" if close else "")
    if model is not None:
        names = [weight_sql(model, i, tf_columns.get(i)) for i, c in enumerate(spec.comparisons)
                 if c.method in NAME_METHODS]
        cond += f" AND ({total_sql(model, tf_columns)}) - ({model.prior_weight!r}) - ({' + '.join(names) or '0'}) < 0"
    return f"({cond})"


def veto_sql(spec: DedupeSpec, model: Model | None, tf_columns: dict[int, str]) -> str:
    """True when any veto fires."""
    parts = veto_parts(spec, model, tf_columns)
    return "(" + " OR ".join(sql for _, sql in parts) + ")" if parts else "false"
