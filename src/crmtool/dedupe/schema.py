"""The ``dedupe`` section of a rule file: its JSON Schema (plain data) and its :class:`Section`.

:data:`DEDUPE_SECTION` is listed in the registry :mod:`crmtool.sections`, which the loader reads;
semantic checks (columns named twice, review band above the threshold, ...) happen in
:mod:`crmtool.dedupe.spec`, imported only when a loaded section is parsed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmtool.section import Section

if TYPE_CHECKING:
    from crmtool.dedupe.spec import DedupeSpec
    from crmtool.ruleset import RuleSet

TRANSFORMS = (
    "exact",
    "text",
    "name",
    "email",
    "email_local",
    "email_domain",
    "phone",
    "digits",
    "date",
    "year",
    "phonetic",
    "nickname",
    "initial",
    "prefix2",
    "prefix3",
    "prefix4",
    "first_token",
    "last_token",
)
METHODS = (
    "exact",
    "name",
    "surname",
    "jaro_winkler",
    "levenshtein",
    "token_set",
    "phonetic",
    "date",
    "numeric",
    "email",
    "phone",
)
SURVIVORSHIP = (
    "most_recent",
    "most_frequent",
    "most_complete",
    "longest",
    "source_priority",
    "most_restrictive",
    "first",
    "sql",
)

_BLOCK_TERM = {
    "type": "string",
    "minLength": 1,
    "description": "column or column:transform, e.g. email:email, last_name:phonetic",
}
_RULE_SPEC = {
    "oneOf": [
        {"type": "string", "description": "the name of a survivorship rule"},
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "rule": {"enum": list(SURVIVORSHIP)},
                "by": {"type": "string", "description": "timestamp column for most_recent"},
                "sql": {"type": "string", "description": "aggregate SQL expression for rule sql"},
            },
            "required": ["rule"],
        },
    ]
}

DEDUPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "find the same person across rows and build golden records",
    "additionalProperties": False,
    "required": ["id", "blocking", "comparisons"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "description": "record id column (values must be unique)"},
        "date_formats": {
            "type": "array",
            "items": {"type": "string"},
            "description": "strptime formats tried for date columns besides ISO",
        },
        "blocking": {
            "type": "array",
            "minItems": 1,
            "description": "candidate pairs share the key of at least one rule",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]+$"},
                    "on": {"type": "array", "items": _BLOCK_TERM, "minItems": 1},
                    "sql": {"type": "string", "description": "SQL key over the input row (alias t)"},
                    "max_block_size": {"type": "integer", "minimum": 2},
                },
                "oneOf": [{"required": ["on"]}, {"required": ["sql"]}],
            },
        },
        "comparisons": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["column", "method"],
                "properties": {
                    "name": {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]+$"},
                    "column": {"type": "string", "minLength": 1},
                    "method": {"enum": list(METHODS)},
                    "thresholds": {
                        "type": "array",
                        "items": {"type": "number"},
                        "minItems": 1,
                        "maxItems": 4,
                    },
                    "swap_with": {"type": "string", "description": "swapped values count too"},
                    "term_frequency": {
                        "type": "boolean",
                        "description": "an exact match on a rare value weighs more",
                    },
                    "weights": {
                        "type": "array",
                        "items": {"type": "number"},
                        "description": "fixed match weights (bits), one per level, best first",
                    },
                },
            },
        },
        "veto": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "comparison (disagreeing) or comparison:level (worse than that level) that sends a "
            "pair to review instead of merging it: relatives and twins",
        },
        "household": {
            "type": "object",
            "additionalProperties": False,
            "description": "comparisons that are one fact for people who live together (address, postcode, "
            "city, landline, a shared email): their combined weight is capped, they never lift a veto, and "
            "when they are high a person-level comparison must agree",
            "properties": {
                "comparisons": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "max_weight": {
                    "type": "number",
                    "minimum": 0,
                    "description": "bits the group adds at most (default: its strongest single agreement)",
                },
                "person": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "description": "comparisons of which one must agree when home evidence is high "
                    "(default: every other comparison but surnames)",
                },
            },
        },
        "veto_unless": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "comparisons whose exact agreement lifts the veto (e.g. national_id, email)",
        },
        "threshold": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "description": "match probability from which a pair is merged",
        },
        "review": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "lower bound of the review band [review, threshold)",
        },
        "model": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "estimate": {"enum": ["em", "fixed"]},
                "prior": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "seed": {"type": "integer"},
                "u_pairs": {"type": "integer", "minimum": 1000},
                "max_iterations": {"type": "integer", "minimum": 1, "maximum": 500},
            },
        },
        "max_block_size": {
            "type": "integer",
            "minimum": 2,
            "description": "blocks with more records are skipped (with a warning)",
        },
        "max_pairs_per_rule": {
            "type": "integer",
            "minimum": 1,
            "description": "a rule making more pairs is skipped (warning)",
        },
        "split_below": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "chaining guard: a cluster holding a pair below this probability is split (default 0.01)",
        },
        "max_cluster_size": {"type": "integer", "minimum": 2},
        "survivorship": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "default": _RULE_SPEC,
                "recency": {"type": "string", "description": "timestamp column used by most_recent"},
                "source": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["column", "priority"],
                    "properties": {
                        "column": {"type": "string"},
                        "priority": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "fields": {"type": "object", "additionalProperties": _RULE_SPEC},
                "consent": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "consent columns: the most restrictive value survives",
                },
            },
        },
    },
}


def parse_dedupe_section(ruleset: RuleSet) -> DedupeSpec | None:
    """The dedupe spec of a loaded rule set (None without a ``dedupe`` section), parsed by its owner."""
    from crmtool.dedupe.spec import spec_from_ruleset

    return spec_from_ruleset(ruleset)


DEDUPE_SECTION = Section("dedupe", DEDUPE_SCHEMA, parse_dedupe_section, DEDUPE_SCHEMA["description"])
