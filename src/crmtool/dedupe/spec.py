"""The ``dedupe`` section of a rule file -> frozen :class:`DedupeSpec` (no DuckDB here).

Every problem is collected with its ``file:line`` and raised once as a :class:`ConfigError`.
The levels of each comparison method are declared here (plain data) so that fixed weights can be
checked against them; :mod:`crmtool.dedupe.compare` turns them into SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from crmtool.dedupe.schema import DEDUPE_SCHEMA, TRANSFORMS
from crmtool.errors import ConfigError, Location
from crmtool.yamlspec import YamlDoc, parse_yaml_text, schema_problems

if TYPE_CHECKING:
    from crmtool.ruleset import RuleSet

DEFAULT_THRESHOLDS: dict[str, tuple[float, ...]] = {
    "name": (0.92, 0.80),
    "surname": (0.92, 0.80),
    "jaro_winkler": (0.92, 0.80),
    "levenshtein": (1, 2),
    "token_set": (0.6,),
    "numeric": (1,),
    "date": (),
    "email": (0.88,),
    "phone": (7,),
    "exact": (),
    "phonetic": (),
}


def level_labels(method: str, thresholds: tuple[float, ...], swap: bool) -> tuple[str, ...]:
    """Names of a comparison's levels, best first; the last is always ``else`` (disagree)."""
    t = thresholds
    swapped = ("swapped",) if swap else ()
    if method == "name":
        return ("exact", *swapped, "nickname", f"jw>={t[0]:g}", f"jw>={t[1]:g}|phonetic", "else")
    if method == "surname":
        return ("exact", *swapped, "shared_token", f"jw>={t[0]:g}", f"jw>={t[1]:g}|phonetic", "else")
    if method == "jaro_winkler":
        return ("exact", *swapped, *(f"jw>={x:g}" for x in t), "else")
    if method == "levenshtein":
        return ("exact", *swapped, *(f"lev<={int(x)}" for x in t), "else")
    if method == "token_set":
        return ("exact", *swapped, *(f"jaccard>={x:g}" for x in t), "else")
    if method == "phonetic":
        return ("exact", *swapped, "phonetic", "else")
    if method == "date":
        return ("exact", "day_month_swap", "one_digit", *(f"within_{int(x)}_days" for x in t), "else")
    if method == "numeric":
        return ("exact", *(f"diff<={x:g}" for x in t), "else")
    if method == "email":
        return ("exact", "same_local", *(f"local_jw>={x:g}" for x in t), "else")
    if method == "phone":
        return ("exact", "one_digit", *(f"last_{int(x)}" for x in t), "else")
    return ("exact", *swapped, "else")


@dataclass(frozen=True)
class BlockingRule:
    name: str
    terms: tuple[tuple[str, str], ...]  # (column, transform)
    sql: str | None
    max_block_size: int | None
    loc: Location


@dataclass(frozen=True)
class Comparison:
    name: str
    column: str
    method: str
    thresholds: tuple[float, ...]
    swap_with: str | None
    term_frequency: bool
    weights: tuple[float, ...] | None
    loc: Location

    @property
    def levels(self) -> tuple[str, ...]:
        return level_labels(self.method, self.thresholds, self.swap_with is not None)


@dataclass(frozen=True)
class FieldRule:
    rule: str
    by: str | None = None
    sql: str | None = None


@dataclass(frozen=True)
class Survivorship:
    default: FieldRule = FieldRule("most_complete")
    recency: str | None = None
    source_column: str | None = None
    source_priority: tuple[str, ...] = ()
    fields: tuple[tuple[str, FieldRule], ...] = ()
    consent: tuple[str, ...] = ()

    def rule_for(self, column: str) -> FieldRule:
        for name, rule in self.fields:
            if name == column:
                return rule
        if column in self.consent:
            return FieldRule("most_restrictive")
        return self.default


@dataclass(frozen=True)
class ModelSpec:
    estimate: str = "em"
    prior: float | None = None
    seed: int = 42
    u_pairs: int = 300_000
    max_iterations: int = 30


@dataclass(frozen=True)
class HouseholdSpec:
    """The household comparison group (see docs/decisions/0012-dedupe-households.md).

    ``comparisons``: one fact for people who live together; their positive weights add up to at most
    ``max_weight`` bits (None: the group's strongest single agreement, from the model). ``person``:
    when the group reaches its cap, a pair none of whose person comparisons agrees (each present one
    at its ``else`` level) is vetoed."""

    comparisons: tuple[str, ...] = ()
    max_weight: float | None = None
    person: tuple[str, ...] = ()


def default_household(comparisons: list[Comparison]) -> HouseholdSpec:
    """Email and phone comparisons and address-like columns (:mod:`crmtool.dedupe.roles`) form the group;
    every other comparison but surnames is person-level."""
    from crmtool.dedupe.roles import HOME_ROLES, role_of

    home = tuple(c.name for c in comparisons if c.method in ("email", "phone") or role_of(c.column) in HOME_ROLES)
    person = tuple(c.name for c in comparisons if c.name not in home and c.method != "surname")
    return HouseholdSpec(home, None, person)


@dataclass(frozen=True)
class DedupeSpec:
    id_column: str
    blocking: tuple[BlockingRule, ...]
    comparisons: tuple[Comparison, ...]
    threshold: float = 0.95
    review: float = 0.5
    model: ModelSpec = field(default_factory=ModelSpec)
    date_formats: tuple[str, ...] = ("%d/%m/%Y", "%Y%m%d", "%d-%m-%Y", "%d.%m.%Y", "%m/%d/%Y")
    max_block_size: int = 2000
    max_pairs_per_rule: int = 20_000_000
    max_cluster_size: int = 50
    split_below: float = 0.01
    veto: tuple[tuple[str, int], ...] = ()  # (comparison, worst level index still allowed)
    veto_unless: tuple[str, ...] = ()
    household: HouseholdSpec = field(default_factory=HouseholdSpec)
    survivorship: Survivorship = field(default_factory=Survivorship)
    loc: Location = field(default_factory=lambda: Location(""))

    def columns(self) -> list[str]:
        """Every input column the spec names (checked against the data before work starts)."""
        cols = [self.id_column]
        for b in self.blocking:
            cols.extend(c for c, _ in b.terms)
        for c in self.comparisons:
            cols.append(c.column)
            if c.swap_with:
                cols.append(c.swap_with)
        s = self.survivorship
        cols.extend(x for x in (s.recency, s.source_column) if x)
        cols.extend(name for name, _ in s.fields)
        cols.extend(s.consent)
        return list(dict.fromkeys(cols))


#: table aliases user SQL may qualify columns with: the input row in blocking keys, the cluster's
#: rows in survivorship aggregates
BLOCKING_ALIASES = ("t",)
SURVIVORSHIP_ALIASES = ("s",)


def _vetted(sql: str, where: Location, what: str, problems: list[tuple[Location, str]], *,
            aggregates: bool = False, aliases: tuple[str, ...] = ()) -> str:
    """User SQL vetted by :mod:`crmtool.usersql` (columns are checked with the data: sql_problems)."""
    from crmtool.usersql import expression_problems

    vetted, found = expression_problems(sql, columns=None, aggregates=aggregates, aliases=aliases)
    problems.extend((where, f"{what}: {p}") for p in found)
    return vetted if vetted is not None else sql


def sql_problems(spec: DedupeSpec, columns: list[str]) -> list[tuple[Location, str]]:
    """The spec's SQL (blocking keys, survivorship) checked again with the data's columns known."""
    from crmtool.usersql import expression_problems

    problems: list[tuple[Location, str]] = []
    for b in spec.blocking:
        if b.sql:
            found = expression_problems(b.sql, columns=columns, aliases=BLOCKING_ALIASES)[1]
            problems.extend((b.loc, f"dedupe: blocking '{b.name}': {p}") for p in found)
    for name, rule in [("default", spec.survivorship.default), *spec.survivorship.fields]:
        if rule.sql:
            found = expression_problems(rule.sql, columns=columns, aggregates=True, aliases=SURVIVORSHIP_ALIASES)[1]
            problems.extend((spec.loc, f"dedupe: survivorship '{name}': {p}") for p in found)
    return problems


def _field_rule(raw: Any) -> FieldRule:
    if isinstance(raw, str):
        return FieldRule(raw)
    return FieldRule(raw["rule"], raw.get("by"), raw.get("sql"))


def _household(data: Any, comparisons: list[Comparison], by_name: dict[str, Comparison], loc: Any,
               problems: list[tuple[Location, str]]) -> HouseholdSpec:
    """The household group as written (``household:``) or by default; household evidence never lifts a veto."""
    raw = data.get("household")
    if raw is None:
        household = default_household(comparisons)
    else:
        home = tuple(raw.get("comparisons", ()))
        for key in ("comparisons", "person"):
            for i, name in enumerate(raw.get(key, ())):
                if name not in by_name:
                    problems.append((loc("household", key, i), f"dedupe: household.{key} names unknown "
                                     f"comparison '{name}'"))
        person = raw.get("person")
        if person is None:
            person = [c.name for c in comparisons if c.name not in home and c.method != "surname"]
        household = HouseholdSpec(home, raw.get("max_weight"), tuple(person))
    for i, name in enumerate(data.get("veto_unless", [])):
        if name in household.comparisons:
            problems.append((loc("veto_unless", i), f"dedupe: veto_unless '{name}' is household evidence "
                             "(people who live together share it), so it cannot lift a veto: remove it from "
                             "veto_unless, or list household.comparisons without it"))
    return household


#: ``loc(*path)``: the Location of a key under the section
LocFn = Callable[..., Location]
Problems = list[tuple[Location, str]]


def _blocking_rules(data: Any, loc: LocFn, problems: Problems) -> list[BlockingRule]:
    """The blocking rules as written: unique names, known transforms, vetted SQL keys."""
    blocking: list[BlockingRule] = []
    names: set[str] = set()
    for i, raw in enumerate(data["blocking"]):
        if raw["name"] in names:
            problems.append(
                (loc("blocking", i, "name"), f"dedupe: blocking rule name '{raw['name']}' used twice")
            )
        names.add(raw["name"])
        terms: list[tuple[str, str]] = []
        for j, term in enumerate(raw.get("on", [])):
            column, _, transform = term.partition(":")
            transform = transform or "exact"
            if transform not in TRANSFORMS:
                problems.append(
                    (
                        loc("blocking", i, "on", j),
                        f"dedupe: blocking '{raw['name']}': unknown transform "
                        f"'{transform}' (use one of {', '.join(TRANSFORMS)})",
                    )
                )
            terms.append((column, transform))
        block_sql = raw.get("sql")
        if block_sql:
            block_sql = _vetted(block_sql, loc("blocking", i, "sql"), f"dedupe: blocking '{raw['name']}'",
                                problems, aliases=BLOCKING_ALIASES)
        blocking.append(
            BlockingRule(
                raw["name"], tuple(terms), block_sql, raw.get("max_block_size"), loc("blocking", i)
            )
        )
    return blocking


def _model_spec(data: Any) -> ModelSpec:
    """The ``model`` block with its defaults."""
    model_raw = data.get("model", {})
    return ModelSpec(
        model_raw.get("estimate", "em"),
        model_raw.get("prior"),
        model_raw.get("seed", 42),
        model_raw.get("u_pairs", 300_000),
        model_raw.get("max_iterations", 30),
    )


def _comparison(raw: Any, i: int, model: ModelSpec, loc: LocFn, problems: Problems) -> Comparison:
    """One comparison: thresholds its method needs, one weight per level, weights when the model is fixed."""
    name = raw.get("name") or raw["column"]
    method = raw["method"]
    thresholds = tuple(raw.get("thresholds", DEFAULT_THRESHOLDS[method]))
    need = {"name": 2, "surname": 2}.get(method, 0)
    if len(thresholds) < need:
        problems.append(
            (
                loc("comparisons", i, "thresholds"),
                f"dedupe: comparison '{name}': method {method} needs {need} thresholds",
            )
        )
        thresholds = DEFAULT_THRESHOLDS[method]
    weights = tuple(raw["weights"]) if "weights" in raw else None
    comp = Comparison(
        name,
        raw["column"],
        method,
        thresholds,
        raw.get("swap_with"),
        bool(raw.get("term_frequency", False)),
        weights,
        loc("comparisons", i),
    )
    if weights is not None and len(weights) != len(comp.levels):
        problems.append(
            (
                loc("comparisons", i, "weights"),
                f"dedupe: comparison '{name}': {len(comp.levels)} weights expected, one per "
                f"level ({', '.join(comp.levels)}), got {len(weights)}",
            )
        )
    if model.estimate == "fixed" and weights is None:
        problems.append(
            (
                loc("comparisons", i),
                f"dedupe: comparison '{name}': model.estimate is fixed, so it needs 'weights'",
            )
        )
    if method == "date" and any(x <= 0 for x in thresholds):
        problems.append(
            (
                loc("comparisons", i, "thresholds"),
                f"dedupe: comparison '{name}': day thresholds must be positive",
            )
        )
    return comp


def _comparisons(data: Any, model: ModelSpec, loc: LocFn, problems: Problems) -> list[Comparison]:
    """The comparisons as written, each name used once."""
    comparisons: list[Comparison] = []
    cnames: set[str] = set()
    for i, raw in enumerate(data["comparisons"]):
        name = raw.get("name") or raw["column"]
        if name in cnames:
            problems.append(
                (loc("comparisons", i), f"dedupe: comparison name '{name}' used twice (give one a 'name')")
            )
        cnames.add(name)
        comparisons.append(_comparison(raw, i, model, loc, problems))
    return comparisons


def _vetoes(data: Any, by_name: dict[str, Comparison], loc: LocFn, problems: Problems) -> list[tuple[str, int]]:
    """``veto`` entries as (comparison, worst level index still allowed); ``veto_unless`` names checked."""
    veto: list[tuple[str, int]] = []
    for i, entry in enumerate(data.get("veto", [])):
        name, _, level = entry.partition(":")
        if name not in by_name:
            problems.append((loc("veto", i), f"dedupe: veto names unknown comparison '{name}'"))
            continue
        levels = by_name[name].levels
        if level and level not in levels:
            problems.append((loc("veto", i), f"dedupe: veto '{entry}': comparison '{name}' has no level "
                             f"'{level}' (levels: {', '.join(levels)})"))
            continue
        veto.append((name, levels.index(level) if level else len(levels) - 2))
    for i, name in enumerate(data.get("veto_unless", [])):
        if name not in by_name:
            problems.append((loc("veto_unless", i), f"dedupe: veto_unless names unknown comparison '{name}'"))
    return veto


def _survivorship(data: Any, loc: LocFn, problems: Problems) -> Survivorship:
    """The ``survivorship`` block: known rules, each with what it needs, user SQL vetted."""
    from crmtool.dedupe.schema import SURVIVORSHIP

    surv_raw = data.get("survivorship", {})
    fields = tuple((k, _field_rule(v)) for k, v in surv_raw.get("fields", {}).items())
    source = surv_raw.get("source", {})
    surv = Survivorship(
        _field_rule(surv_raw.get("default", "most_complete")),
        surv_raw.get("recency"),
        source.get("column"),
        tuple(source.get("priority", ())),
        fields,
        tuple(surv_raw.get("consent", ())),
    )
    vetted_fields = []
    for name, rule in [("default", surv.default), *fields]:
        where = loc("survivorship", "fields", name) if name != "default" else loc("survivorship", "default")
        if rule.sql:
            rule = FieldRule(rule.rule, rule.by, _vetted(rule.sql, where, f"dedupe: survivorship '{name}'", problems,
                                                         aggregates=True, aliases=SURVIVORSHIP_ALIASES))
        vetted_fields.append((name, rule))
        if rule.rule not in SURVIVORSHIP:
            problems.append((where, f"dedupe: survivorship '{name}': unknown rule '{rule.rule}'"))
        if rule.rule == "sql" and not rule.sql:
            problems.append((where, f"dedupe: survivorship '{name}': rule sql needs 'sql'"))
        if rule.rule == "most_recent" and not (rule.by or surv.recency):
            problems.append(
                (where, f"dedupe: survivorship '{name}': most_recent needs 'by' or survivorship.recency")
            )
        if rule.rule == "source_priority" and not surv.source_column:
            problems.append(
                (where, f"dedupe: survivorship '{name}': source_priority needs survivorship.source")
            )
    return replace(surv, default=vetted_fields[0][1], fields=tuple(vetted_fields[1:]))


def _checked_section(doc: YamlDoc, data: Any, path: tuple[str | int, ...]) -> None:
    """Raise the schema problems of the section (types, required keys) before its meaning is read."""
    sub = YamlDoc(doc.file, data, {k[len(path) :]: v for k, v in doc.lines.items() if k[: len(path)] == path})
    found = schema_problems(sub, DEDUPE_SCHEMA)
    if found:
        raise ConfigError(
            [(loc, f"dedupe: {msg}") for loc, msg in found],
            "see the dedupe section of the rule-file reference",
        )


def parse_spec(doc: YamlDoc, data: Any, path: tuple[str | int, ...] = ("dedupe",)) -> DedupeSpec:
    """Validate and type the section ``data`` found at ``path`` in ``doc``."""
    _checked_section(doc, data, path)
    problems: Problems = []

    def loc(*p: str | int) -> Location:
        return doc.loc((*path, *p))

    blocking = _blocking_rules(data, loc, problems)
    model = _model_spec(data)
    comparisons = _comparisons(data, model, loc, problems)
    by_name = {c.name: c for c in comparisons}
    veto = _vetoes(data, by_name, loc, problems)
    household = _household(data, comparisons, by_name, loc, problems)
    threshold = float(data.get("threshold", 0.95))
    review = float(data.get("review", min(0.5, threshold)))
    if review > threshold:
        problems.append(
            (loc("review"), f"dedupe: review band starts at {review:g}, above the threshold {threshold:g}")
        )
    surv = _survivorship(data, loc, problems)
    if problems:
        raise ConfigError(problems, "see the dedupe section of the rule-file reference")
    defaults = DedupeSpec(data["id"], (), ())
    return DedupeSpec(
        id_column=data["id"],
        blocking=tuple(blocking),
        comparisons=tuple(comparisons),
        threshold=threshold,
        review=review,
        model=model,
        date_formats=tuple(data.get("date_formats", defaults.date_formats)),
        max_block_size=int(data.get("max_block_size", defaults.max_block_size)),
        max_pairs_per_rule=int(data.get("max_pairs_per_rule", defaults.max_pairs_per_rule)),
        max_cluster_size=int(data.get("max_cluster_size", defaults.max_cluster_size)),
        veto=tuple(veto),
        split_below=float(data.get("split_below", defaults.split_below)),
        veto_unless=tuple(data.get("veto_unless", ())),
        household=household,
        survivorship=surv,
        loc=loc(),
    )


def spec_from_ruleset(ruleset: RuleSet) -> DedupeSpec | None:
    """The dedupe spec of a loaded rule set, or None when no file has a ``dedupe`` section."""
    if "dedupe" not in ruleset.sections:
        return None
    doc, data = ruleset.sections["dedupe"]
    return parse_spec(doc, data)


def spec_from_text(text: str, file: str = "<dedupe>") -> DedupeSpec:
    """Parse YAML text holding a top-level ``dedupe:`` section (handy in Python and in benchmarks)."""
    doc = parse_yaml_text(text, file)
    if not isinstance(doc.data, dict) or "dedupe" not in doc.data:
        raise ConfigError([(Location(file), "expected a top-level 'dedupe' section")])
    return parse_spec(doc, doc.data["dedupe"])


def required_spec(ruleset: RuleSet) -> DedupeSpec:
    """The dedupe spec of loaded rule files; a ConfigError when none has one."""
    spec = spec_from_ruleset(ruleset)
    if spec is None:
        raise ConfigError(
            [(Location(str(f)), "no 'dedupe' section") for f in ruleset.files[:1]],
            "add a dedupe section (see rules/30-dedupe.yaml, or 'crmtool dedupe FILE --suggest')",
        )
    return spec
