"""A quick "is this document valid?" for the JSON Schemas crmtool writes itself.

Importing ``jsonschema`` (and ``referencing``, ``attrs``, ``rpds``) costs a small ``validate``
about a fifth of its start-up, yet a rule file that is right needs no error messages. So a
document is first checked here, against the keywords our schemas use, with the semantics of
JSON Schema 2020-12 as ``jsonschema`` implements them (keywords apply to their own type only,
booleans are not numbers, ``enum``/``const`` tell ``true`` from ``1``). Only when the answer is
"invalid", or when the schema or the document holds something this module does not know
(another keyword, a float where an integer is wanted, a list in an ``enum``...), does the caller
run ``jsonschema`` itself, which then finds and words every problem. This module never reports
a problem: it can only spare the full validator, so it can never change what a user sees.

``$ref`` is followed when it points into the same schema (``#/$defs/condition``, a JSON pointer
from the root, as the segments schema's recursive conditions do); any other reference (another
document, an anchor, ``$dynamicRef``) is left to ``jsonschema``.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

#: keywords that say nothing about validity (``$defs`` only holds what a ``$ref`` may point to)
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "default", "examples", "$defs"})
#: the schema being checked, which a local ``$ref`` is resolved against
_ROOT: ContextVar[Any] = ContextVar("_ROOT")


class _Unsure(Exception):
    """The schema or the document steps outside what :func:`surely_valid` decides exactly."""


def surely_valid(schema: Any, instance: Any) -> bool | None:
    """True or False when this module decides exactly, None when ``jsonschema`` must decide."""
    token = _ROOT.set(schema)
    try:
        return _valid(schema, instance)
    except (_Unsure, re.error, RecursionError):
        return None
    finally:
        _ROOT.reset(token)


@lru_cache(maxsize=256)
def _pattern(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if name == "number":
        return _is_number(value)
    if name == "integer":
        if isinstance(value, float):
            raise _Unsure  # jsonschema takes 1.0 as an integer: let it say so
        return isinstance(value, int) and not isinstance(value, bool)
    raise _Unsure


def _equal(one: Any, two: Any) -> bool:
    """``jsonschema``'s equality for scalars (``true`` is not ``1``); containers are left to it."""
    for value in (one, two):
        if not (value is None or isinstance(value, str | int | float)):
            raise _Unsure
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, bool) or isinstance(two, bool):
        return one is two
    return bool(one == two)


def _valid(schema: Any, value: Any) -> bool:
    if schema is True:
        return True
    if schema is False:
        return False
    if not isinstance(schema, dict):
        raise _Unsure
    for key, arg in schema.items():
        if key in _ANNOTATIONS or key in ("then", "else"):
            continue
        check = _KEYWORDS.get(key)
        if check is None:
            raise _Unsure
        if not check(arg, value, schema):
            return False
    return True


def _type(arg: Any, value: Any, _schema: dict[str, Any]) -> bool:
    names = arg if isinstance(arg, list) else [arg]
    return any(_is_type(value, name) for name in names)


def _properties(arg: dict[str, Any], value: Any, _schema: dict[str, Any]) -> bool:
    if not isinstance(value, dict):
        return True
    return all(_valid(sub, value[key]) for key, sub in arg.items() if key in value)


def _additional(arg: Any, value: Any, schema: dict[str, Any]) -> bool:
    if not isinstance(value, dict):
        return True
    if "patternProperties" in schema or not all(isinstance(k, str) for k in value):
        raise _Unsure
    known = schema.get("properties", {})
    return all(_valid(arg, v) for k, v in value.items() if k not in known)


def _required(arg: list[str], value: Any, _schema: dict[str, Any]) -> bool:
    return not isinstance(value, dict) or all(name in value for name in arg)


def _min_properties(arg: int, value: Any, _schema: dict[str, Any]) -> bool:
    return not isinstance(value, dict) or len(value) >= arg


def _max_properties(arg: int, value: Any, _schema: dict[str, Any]) -> bool:
    return not isinstance(value, dict) or len(value) <= arg


def _property_names(arg: Any, value: Any, _schema: dict[str, Any]) -> bool:
    if not isinstance(value, dict):
        return True
    if not all(isinstance(k, str) for k in value):
        raise _Unsure
    return all(_valid(arg, k) for k in value)


def _items(arg: Any, value: Any, _schema: dict[str, Any]) -> bool:
    return not isinstance(value, list) or all(_valid(arg, item) for item in value)


def _min_items(arg: int, value: Any, _schema: dict[str, Any]) -> bool:
    return not isinstance(value, list) or len(value) >= arg


def _max_items(arg: int, value: Any, _schema: dict[str, Any]) -> bool:
    return not isinstance(value, list) or len(value) <= arg


def _unique_items(arg: bool, value: Any, _schema: dict[str, Any]) -> bool:
    if not arg or not isinstance(value, list):
        return True
    if not all(isinstance(item, str) for item in value):
        raise _Unsure
    return len(set(value)) == len(value)


def _min_length(arg: int, value: Any, _schema: dict[str, Any]) -> bool:
    return not isinstance(value, str) or len(value) >= arg


def _pattern_kw(arg: str, value: Any, _schema: dict[str, Any]) -> bool:
    return not isinstance(value, str) or _pattern(arg).search(value) is not None


def _bound(test: Any) -> Any:
    def check(arg: Any, value: Any, _schema: dict[str, Any]) -> bool:
        return not _is_number(value) or bool(test(value, arg))
    return check


def _const(arg: Any, value: Any, _schema: dict[str, Any]) -> bool:
    return _equal(value, arg)


def _enum(arg: list[Any], value: Any, _schema: dict[str, Any]) -> bool:
    return any(_equal(value, option) for option in arg)


def _all_of(arg: list[Any], value: Any, _schema: dict[str, Any]) -> bool:
    return all(_valid(sub, value) for sub in arg)


def _one_of(arg: list[Any], value: Any, _schema: dict[str, Any]) -> bool:
    return sum(1 for sub in arg if _valid(sub, value)) == 1


def _any_of(arg: list[Any], value: Any, _schema: dict[str, Any]) -> bool:
    return any(_valid(sub, value) for sub in arg)


def _if(arg: Any, value: Any, schema: dict[str, Any]) -> bool:
    if _valid(arg, value):
        return _valid(schema.get("then", True), value)
    return _valid(schema.get("else", True), value)


def _ref(arg: Any, value: Any, _schema: dict[str, Any]) -> bool:
    """A reference into the schema being checked: ``#`` and a JSON pointer from its root."""
    if not isinstance(arg, str) or not (arg == "#" or arg.startswith("#/")):
        raise _Unsure
    target = _ROOT.get()
    for part in arg[2:].split("/") if arg != "#" else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if "%" in part or not isinstance(target, dict) or part not in target:
            raise _Unsure  # percent-encoded, into a list, or a reference to nothing: jsonschema says so
        target = target[part]
    return _valid(target, value)


_KEYWORDS: dict[str, Any] = {
    "$ref": _ref,
    "type": _type,
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _required,
    "minProperties": _min_properties,
    "maxProperties": _max_properties,
    "propertyNames": _property_names,
    "items": _items,
    "minItems": _min_items,
    "maxItems": _max_items,
    "uniqueItems": _unique_items,
    "minLength": _min_length,
    "pattern": _pattern_kw,
    "minimum": _bound(lambda v, a: v >= a),
    "maximum": _bound(lambda v, a: v <= a),
    "exclusiveMinimum": _bound(lambda v, a: v > a),
    "exclusiveMaximum": _bound(lambda v, a: v < a),
    "const": _const,
    "enum": _enum,
    "allOf": _all_of,
    "oneOf": _one_of,
    "anyOf": _any_of,
    "if": _if,
}
