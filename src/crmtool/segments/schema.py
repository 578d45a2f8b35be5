"""The JSON Schema of ``segments.yaml``, published by ``crmtool rules schema segments``."""

from __future__ import annotations

from typing import Any

from crmtool.segments.model import CLV_MODELS, COMPARISONS

SCHEMA_ID = "https://crmtool.dev/schemas/segments.schema.json"
NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
SEGMENT_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"

# -- the schema -------------------------------------------------------------------------------

_SCALAR = {"type": ["string", "number", "boolean"]}
_RANGE = {
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": 5},
        {"type": "string", "pattern": r"^\s*[1-5]\s*(-\s*[1-5]\s*)?$"},
    ],
    "description": "a score (4) or an inclusive range ('3-5')",
}
_PERCENT = {
    "type": "number",
    "exclusiveMinimum": 0,
    "description": "share of customers in percent (0-100, two decimals)",
}

_COL = {"type": "string", "minLength": 1}
_HOLDOUT: dict[str, Any] = {
    "oneOf": [
        _PERCENT,
        {
            "type": "object",
            "required": ["percent"],
            "additionalProperties": False,
            "properties": {"percent": _PERCENT, "salt": {"type": "string"}},
        },
    ]
}


def _condition_schema() -> dict[str, Any]:
    ref = {"$ref": "#/$defs/condition"}
    compare_props: dict[str, Any] = {"field": {"type": "string", "minLength": 1}}
    for op in COMPARISONS:
        compare_props[op] = _SCALAR
    compare_props.update(
        {
            "in": {"type": "array", "items": _SCALAR, "minItems": 1},
            "not_in": {"type": "array", "items": _SCALAR, "minItems": 1},
            "between": {"type": "array", "items": _SCALAR, "minItems": 2, "maxItems": 2},
            "is_null": {"type": "boolean"},
            "within": {"type": "string", "description": "'last 30 days' (also weeks, months, years)"},
            "not_within": {"type": "string"},
            "before": {"type": "string", "description": "a date, 'today', 'as_of' or '90 days ago'"},
            "after": {"type": "string"},
        }
    )
    return {
        "description": "all / any / not, a comparison {field: X, <op>: value}, {sql: ...} or a SQL string",
        "oneOf": [
            {"type": "string", "minLength": 1, "description": "raw SQL boolean expression"},
            {
                "type": "object",
                "required": ["all"],
                "additionalProperties": False,
                "properties": {"all": {"type": "array", "items": ref, "minItems": 1}},
            },
            {
                "type": "object",
                "required": ["any"],
                "additionalProperties": False,
                "properties": {"any": {"type": "array", "items": ref, "minItems": 1}},
            },
            {
                "type": "object",
                "required": ["not"],
                "additionalProperties": False,
                "properties": {"not": ref},
            },
            {
                "type": "object",
                "required": ["sql"],
                "additionalProperties": False,
                "properties": {"sql": {"type": "string", "minLength": 1}},
            },
            {
                "type": "object",
                "required": ["field"],
                "additionalProperties": False,
                "properties": compare_props,
                "minProperties": 2,
                "maxProperties": 2,
            },
        ],
    }


def _inputs() -> dict[str, Any]:
    """Column mappings of customers, orders and events."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "customers": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "id": _COL,
                    "email": _COL,
                    "phone": _COL,
                    "consent": {"type": ["string", "null"]},
                    "signup_date": _COL,
                    "phone_region": {"type": "string", "pattern": "^[A-Z]{2}$"},
                },
            },
            "orders": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "path": _COL,
                    "customer_id": _COL,
                    "date": _COL,
                    "amount": _COL,
                    "channel": _COL,
                },
            },
            "events": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "path": _COL,
                    "customer_id": _COL,
                    "type": _COL,
                    "timestamp": _COL,
                    "channel": _COL,
                },
            },
            "date_formats": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "decimal_comma": {
                "type": "boolean",
                "description": "amounts like 1.234,56 (default true)",
            },
        },
    }


def _output() -> dict[str, Any]:
    """What each send list holds."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "format": {"enum": ["csv", "parquet"]},
            "columns": {
                "type": "array",
                "items": _COL,
                "minItems": 1,
                "description": "customer columns or features in each send list",
            },
        },
    }


def _features() -> dict[str, Any]:
    """User features: SQL expressions or event counts."""
    return {
        "type": "object",
        "propertyNames": {"pattern": NAME},
        "additionalProperties": {
            "oneOf": [
                {"type": "string", "minLength": 1, "description": "SQL expression"},
                {
                    "type": "object",
                    "required": ["sql"],
                    "additionalProperties": False,
                    "properties": {
                        "sql": {"type": "string", "minLength": 1},
                        "description": {"type": "string"},
                    },
                },
                {
                    "type": "object",
                    "required": ["events"],
                    "additionalProperties": False,
                    "properties": {
                        "events": {"oneOf": [_COL, {"type": "array", "items": _COL, "minItems": 1}]},
                        "days": {"type": "integer", "minimum": 1},
                        "description": {"type": "string"},
                    },
                },
            ],
        },
    }


def _rfm() -> dict[str, Any]:
    """The RFM segment mapping."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "segments": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "pattern": NAME},
                        "r": _RANGE,
                        "f": _RANGE,
                        "m": _RANGE,
                    },
                },
            }
        },
    }


def _funnel() -> dict[str, Any]:
    """Funnel stages, first match wins."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["stages"],
        "properties": {
            "stages": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["stage", "when"],
                    "additionalProperties": False,
                    "properties": {
                        "stage": {"type": "string", "pattern": NAME},
                        "when": {"$ref": "#/$defs/condition"},
                    },
                },
            },
            "default": {"type": "string", "pattern": NAME},
        },
    }


def _clv() -> dict[str, Any]:
    """Customer value features."""
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "customer value features: clv_historical, clv_predicted, churn_probability",
        "properties": {
            "model": {"enum": list(CLV_MODELS),
                      "description": "bgnbd (needs the optional 'clv' extra) or historical only"},
            "months": {"type": "integer", "minimum": 1, "description": "horizon of clv_predicted"},
            "discount_rate": {"type": "number", "minimum": 0, "maximum": 1,
                              "description": "monthly discount rate of future value"},
        },
    }


def _holdouts() -> dict[str, Any]:
    """Global and campaign holdouts."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "salt": {"type": "string", "minLength": 1},
            "global": _HOLDOUT,
            "campaigns": {
                "type": "object",
                "propertyNames": {"pattern": NAME},
                "additionalProperties": {
                    "type": "object",
                    "required": ["percent", "segments"],
                    "additionalProperties": False,
                    "properties": {
                        "percent": _PERCENT,
                        "salt": {"type": "string"},
                        "segments": {"type": "array", "items": _COL, "minItems": 1},
                    },
                },
            },
        },
    }


def _segment_list() -> dict[str, Any]:
    """The segments, in priority order within a group."""
    return {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "required": ["name", "when"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": SEGMENT_NAME},
                "description": {"type": "string"},
                "when": {"$ref": "#/$defs/condition"},
                "exclusive": {
                    "type": "string",
                    "pattern": NAME,
                    "description": "group: a customer lands only in its highest-priority segment",
                },
                "priority": {"type": "integer", "description": "1 is highest; ties go to file order"},
                "holdout": _HOLDOUT,
                "columns": {"type": "array", "items": _COL, "minItems": 1},
            },
        },
    }


def segments_schema() -> dict[str, Any]:
    """The JSON Schema of ``segments.yaml`` (for editors and ``crmtool rules schema segments``)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "crmtool segments file",
        "type": "object",
        "additionalProperties": False,
        "required": ["segments"],
        "$defs": {"condition": _condition_schema()},
        "properties": {
            "version": {"const": 1},
            "as_of": {
                "type": ["string", "null"],
                "pattern": r"^(today|\d{4}-\d{2}-\d{2})$",
                "description": "reference date (ISO) or 'today' (default); --as-of overrides",
            },
            "inputs": _inputs(),
            "output": _output(),
            "features": _features(),
            "rfm": _rfm(),
            "funnel": _funnel(),
            "clv": _clv(),
            "holdouts": _holdouts(),
            "segments": _segment_list(),
        },
    }

