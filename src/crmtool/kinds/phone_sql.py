"""A vectorised fast path for phone numbers, built from libphonenumber's own metadata.

For a region whose numbers carry no national prefix (ES, PT, IT, ...), a number written as
national digits, ``+CC`` digits or ``00CC`` digits is valid exactly when its national digits
match the region's general pattern and one of its number-type patterns: the same test
``phonenumbers.is_valid_number`` makes. :func:`e164_fast_sql` gives that test as one DuckDB
expression returning the E.164 form, or NULL when it cannot decide (other regions, odd
formats, invalid-looking numbers): those few go to the library, once per distinct value.
:func:`invalid_fast_sql` decides the plainly invalid ones (too few digits). Agreement with
the library is tested on generated numbers.
"""

from __future__ import annotations

from functools import lru_cache

from crmtool.sqltext import sql_str

_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail",
          "fixed_line", "mobile")



@lru_cache(maxsize=64)
def region_patterns(region: str) -> tuple[int, str, str] | None:
    """(country code, general pattern, union of type patterns) or None when no fast path applies."""
    from phonenumbers import PhoneMetadata

    meta = PhoneMetadata.metadata_for_region(region.upper())
    if meta is None or meta.national_prefix_for_parsing or meta.national_prefix:
        return None
    general = meta.general_desc.national_number_pattern if meta.general_desc else None
    types = [getattr(meta, t).national_number_pattern for t in _TYPES
             if getattr(meta, t) is not None and getattr(meta, t).national_number_pattern]
    if not general or not types:
        return None
    return int(meta.country_code or 0), general, "|".join(f"(?:{p})" for p in types)


def compact_sql(value_sql: str) -> str:
    """The value without the separators people write in phone numbers."""
    return f"regexp_replace(CAST({value_sql} AS VARCHAR), '[ ().\\-/\\t]', '', 'g')"


def e164_fast_sql(value_sql: str, region: str, *, compact: str | None = None) -> str:
    """SQL giving ``+<cc><national>`` for numbers certainly valid in ``region``, else NULL.

    ``value_sql`` is evaluated several times: pass a column, not an expensive expression;
    ``compact`` may name a column already holding :func:`compact_sql` of the value.
    """
    patterns = region_patterns(region)
    if patterns is None:
        return "CAST(NULL AS VARCHAR)"
    cc, general, types = patterns
    compact = compact or compact_sql(value_sql)
    national = (f"CASE WHEN starts_with({compact}, '+{cc}') THEN substr({compact}, {len(str(cc)) + 2}) "
                f"WHEN starts_with({compact}, '00{cc}') THEN substr({compact}, {len(str(cc)) + 3}) "
                f"WHEN regexp_full_match({compact}, '[0-9]+') THEN {compact} END")
    return (f"CASE WHEN regexp_full_match({national}, {sql_str(general)}) "
            f"AND regexp_full_match({national}, {sql_str(types)}) THEN '+{cc}' || ({national}) END")


@lru_cache(maxsize=64)
def _shortest(region: str) -> tuple[int, str] | None:
    """(shortest national number, international prefix) where both are plain, else None."""
    from phonenumbers import PhoneMetadata

    if region_patterns(region) is None:
        return None
    meta = PhoneMetadata.metadata_for_region(region.upper())
    if meta is None or meta.general_desc is None:
        return None
    lengths = [n for n in (meta.general_desc.possible_length or ()) if n > 0]
    prefix = meta.international_prefix or ""
    if not lengths or not prefix.isdigit():
        return None
    return min(lengths), prefix


def invalid_fast_sql(value_sql: str, region: str, *, compact: str | None = None) -> str:
    """SQL that is true for values certainly not a valid number of ``region``, else false.

    Bare digits (separators aside) without the international prefix are read as a national
    number, and one shorter than the region's shortest number is never valid: ``11985`` in
    ES. Everything else is left to the library.
    """
    shortest = _shortest(region)
    if shortest is None:
        return "false"
    length, prefix = shortest
    compact = compact or compact_sql(value_sql)
    return (f"(regexp_full_match({compact}, '[0-9]+') AND NOT starts_with({compact}, '{prefix}') "
            f"AND length({compact}) < {length})")
