"""JSON Schemas of the privacy rule-file sections (``consent``, ``retention``) and of export policies.

:data:`CONSENT_SECTION` and :data:`RETENTION_SECTION` are listed in the registry
:mod:`crmtool.sections`, which the loader reads. This module imports only :mod:`crmtool.section`
at run time; the parsers (:mod:`crmtool.privacy.consent`, :mod:`crmtool.privacy.retention`) are
imported only when a loaded section is parsed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmtool.section import Section

if TYPE_CHECKING:
    from crmtool.privacy.consent import ChannelConsent
    from crmtool.privacy.retention import RetentionRule
    from crmtool.ruleset import RuleSet

CHANNELS = ("email", "sms", "phone", "postal")
_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]+$"}
_STRINGS = {"type": "array", "items": {"type": ["string", "integer", "boolean"]}}

CONSENT_CHANNEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["column"],
    "properties": {
        "column": {"type": "string", "minLength": 1, "description": "column holding the consent value"},
        "date_column": {"type": "string", "minLength": 1, "description": "when consent was given or renewed"},
        "granted": {**_STRINGS, "description": "extra spellings meaning granted"},
        "denied": {**_STRINGS, "description": "extra spellings meaning denied"},
    },
}

CONSENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "consent columns per channel; values normalised to granted / denied / unknown",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {ch: CONSENT_CHANNEL_SCHEMA for ch in CHANNELS},
}

PERIOD_PATTERN = r"^\s*[1-9][0-9]*\s*(y|years?|m|months?|d|days?)\s*$"

RETENTION_RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "inactive_for", "activity_columns", "action"],
    "properties": {
        "name": _NAME,
        "description": {"type": "string"},
        "inactive_for": {
            "type": "string",
            "pattern": PERIOD_PATTERN,
            "description": "e.g. '3y', '36 months', '1095 days'",
        },
        "activity_columns": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "minLength": 1},
            "description": "date columns: the most recent one is the last activity",
        },
        "activity_files": {
            "type": "array",
            "description": "other exports whose dates count as activity (orders, events), per customer",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["path", "key", "date_column"],
                "properties": {
                    "path": {
                        "type": "string",
                        "minLength": 1,
                        "description": "relative to the rule file or working folder",
                    },
                    "key": {"type": "string", "minLength": 1, "description": "customer id column in that file"},
                    "date_column": {"type": "string", "minLength": 1},
                    "date_formats": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                },
            },
        },
        "consent_renewal": {
            "enum": list(CHANNELS),
            "description": "the consent date of this channel also counts as activity",
        },
        "date_formats": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "action": {"enum": ["delete", "anonymise"]},
        "anonymise_columns": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "columns blanked when anonymising (default: personal-data columns)",
        },
        "undated": {
            "enum": ["keep", "apply"],
            "description": "rows with no activity date at all: keep (default) or treat as inactive",
        },
    },
}

RETENTION_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "retention rules: records inactive longer than the period are deleted or anonymised",
    "minItems": 1,
    "items": RETENTION_RULE_SCHEMA,
}


def parse_consent_section(ruleset: RuleSet) -> dict[str, ChannelConsent]:
    """The consent settings of a loaded rule set per channel (empty without a ``consent`` section)."""
    from crmtool.privacy.consent import parse_consent

    return parse_consent(ruleset)


def parse_retention_section(ruleset: RuleSet) -> list[RetentionRule]:
    """The retention rules of a loaded rule set (empty without a ``retention`` section)."""
    from crmtool.privacy.retention import parse_retention

    return parse_retention(ruleset)


CONSENT_SECTION = Section("consent", CONSENT_SCHEMA, parse_consent_section, CONSENT_SCHEMA["description"])
RETENTION_SECTION = Section("retention", RETENTION_SCHEMA, parse_retention_section, RETENTION_SCHEMA["description"])

POLICY_ACTIONS = ("keep", "drop", "hash", "mask", "generalise")
GENERALISE_TO = ("year", "age_band", "decade", "province", "postal_prefix")

_COLUMN_RULE: dict[str, Any] = {
    "oneOf": [
        {"enum": list(POLICY_ACTIONS)},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["generalise"],
            "properties": {"generalise": {"enum": list(GENERALISE_TO)}},
        },
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["mask"],
            "properties": {"mask": {"enum": ["email", "phone", "text"]}},
        },
    ]
}

POLICY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "crmtool export policy",
    "type": "object",
    "additionalProperties": False,
    "required": ["columns"],
    "properties": {
        "version": {"const": 1},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "default": {
            "enum": ["drop", "keep"],
            "description": "what happens to columns not listed (default drop)",
        },
        "key_column": {"type": "string", "description": "record key, used to drop erased people"},
        "email_column": {"type": "string"},
        "phone_column": {"type": "string"},
        "only_mailable": {"type": "boolean"},
        "columns": {"type": "object", "minProperties": 1, "additionalProperties": _COLUMN_RULE},
    },
}
