"""Which columns look like personal data, from their names and a sample of their contents.

Used to mark columns in ``profile``, to decide which values the audit log hashes, and by
``crmtool pii``. Detection is deliberately generous: a false alarm costs a hash, a miss leaks.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

NAME_HINTS: list[tuple[str, str]] = [
    ("email", r"e_?mail|correo|courriel|mail"),
    ("phone", r"phone|tel[eé]?f|^tel|movil|mobile|celular|cell|fax|whatsapp"),
    ("national_id", r"\bdni\b|\bnif\b|\bnie\b|passport|pasaporte|ssn|national_?id|tax_?id|documento|cif"),
    ("birth_date", r"birth|nacimiento|\bdob\b|fecha_?nac|born"),
    ("name", r"name|nombre|apellido|surname|first|last|given|family|prenom|nom\b|titular|contact"),
    (
        "address",
        r"address|direcci[oó]n|calle|domicilio|street|addr|via|portal|piso|cp\b|postal|zip|codigo_?postal",
    ),
    ("ip_address", r"\bip\b|ip_?addr|ip_address"),
    ("bank", r"iban|account|cuenta|card|tarjeta|bic\b|swift"),
    ("customer_id", r"customer_?id|client_?id|id_?cliente|cliente_?id|user_?id|member_?id"),
    ("location", r"city|ciudad|localidad|municipio|poblaci[oó]n|town|provincia|province"),
    ("gender", r"gender|sexo|g[eé]nero"),
]
#: names that describe *about* personal data (flags, dates, statuses), not the data itself; checked after
#: birth dates, so ``birth_date`` stays personal while ``email_consent`` or ``last_order_date`` do not
NOT_PERSONAL_NAME = (
    r"consent|opt_?in|opt_?out|subscri|bounce|status|valid|verified|flag|count|score|segment|"
    r"domain|_at$|date$|fecha|order|amount|total|spent|source|channel|_type$|_kind$|mailable"
)
#: values that match a category's pattern but are something else (dates, IPv4 addresses)
NOT_CONTENT = {"phone": r"[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}|[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{2,4}"
                        r"|([0-9]{1,3}\.){3}[0-9]{1,3}"}
CONTENT_PATTERNS: list[tuple[str, str]] = [
    ("email", r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    ("national_id", r"^([0-9]{8}-?[A-Za-z]|[XYZxyz]-?[0-9]{7}-?[A-Za-z])$"),
    ("phone", r"^(\+|00)?[0-9][0-9 ().-]{7,18}[0-9]$"),
    ("ip_address", r"^([0-9]{1,3}\.){3}[0-9]{1,3}$|^[0-9a-fA-F]{0,4}(:[0-9a-fA-F]{0,4}){2,7}$"),
    ("bank", r"^[A-Z]{2}[0-9]{2}[A-Z0-9 ]{11,30}$"),
]


@dataclass(frozen=True)
class PiiColumn:
    column: str
    category: str
    evidence: str  # "name", "content" or "name+content"
    share: float  # share of sampled non-blank values matching the content pattern


def _fold(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace(" ", "_").replace("-", "_")


def category_from_name(column: str) -> str | None:
    """The kind of personal data a column name suggests (``None`` when none, or when it names a flag/date)."""
    folded = _fold(column)
    if re.search(NAME_HINTS[3][1], folded):
        return "birth_date"
    if re.search(NOT_PERSONAL_NAME, folded):
        return None
    for category, pattern in NAME_HINTS:
        if re.search(pattern, folded):
            return category
    return None


def detect_pii(
    con: duckdb.DuckDBPyConnection, table: str, sample: int = 2000, min_share: float = 0.5
) -> dict[str, PiiColumn]:
    """Columns of ``table`` that look like personal data, by name or by content (one SQL pass)."""
    cols = [r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall() if r[0] != "_row"]
    if not cols:
        return {}
    parts = []
    for i, col in enumerate(cols):
        v = f'trim(CAST("{col.replace(chr(34), chr(34) * 2)}" AS VARCHAR))'
        parts.append(f"count(nullif({v}, '')) AS n{i}")
        for j, (_cat, pattern) in enumerate(CONTENT_PATTERNS):
            unless = f" AND NOT regexp_full_match({v}, '{NOT_CONTENT[_cat]}')" if _cat in NOT_CONTENT else ""
            parts.append(f"count(*) FILTER (WHERE regexp_full_match({v}, '{pattern}'){unless}) AS c{i}_{j}")
    row = con.execute(
        f'SELECT {", ".join(parts)} FROM (SELECT * FROM "{table}" LIMIT {int(sample)})'
    ).fetchall()[0]
    found: dict[str, PiiColumn] = {}
    values = list(row) if row else []
    width = 1 + len(CONTENT_PATTERNS)
    for i, col in enumerate(cols):
        n = values[i * width] or 0
        by_name = category_from_name(col)
        by_content, share = None, 0.0
        for j, (cat, _pattern) in enumerate(CONTENT_PATTERNS):
            hits = values[i * width + 1 + j] or 0
            if n and hits / n >= min_share and hits / n > share:
                by_content, share = cat, hits / n
        if by_name and by_content:
            found[col] = PiiColumn(
                col,
                by_content if by_name != by_content and by_name == "name" else by_name,
                "name+content",
                round(share, 3),
            )
        elif by_name:
            found[col] = PiiColumn(col, by_name, "name", round(share, 3))
        elif by_content:
            found[col] = PiiColumn(col, by_content, "content", round(share, 3))
    return found


def pii_inventory(con: duckdb.DuckDBPyConnection, table: str) -> list[dict[str, object]]:
    """Every column of ``table`` in order, with its personal-data category (``None`` when none)."""
    found = detect_pii(con, table)
    cols = [r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall() if r[0] != "_row"]
    return [
        {
            "column": c,
            "category": found[c].category if c in found else None,
            "evidence": found[c].evidence if c in found else None,
            "share": found[c].share if c in found else 0.0,
        }
        for c in cols
    ]
