"""``crmtool init``: a starter ``rules/`` and ``segments.yaml`` from the profile of the user's export.

Columns are recognised by name and by content (:mod:`crmtool.pii` for personal data, the
profile's inferred types and shapes for dates and amounts), so the starter works on an export
with any column names. The files are plain YAML with comments, meant to be edited; they pass
``crmtool rules lint`` and ``crmtool segment check`` as written. Nothing is overwritten unless
asked (``force``), and either every file is written or none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from crmtool.errors import UsageError
from crmtool.profile import Profile
from crmtool.status import Status

if TYPE_CHECKING:
    import duckdb

RULES_FILE = Path("rules") / "10-starter.yaml"
DEDUPE_FILE = Path("rules") / "30-dedupe.yaml"
SEGMENTS_FILE = Path("segments.yaml")

#: shapes of date values (see profile.shape_sql) -> strptime formats; day first, as in Spain
DATE_SHAPES = {"99/99/9999": "%d/%m/%Y", "9/99/9999": "%d/%m/%Y", "99/9/9999": "%d/%m/%Y",
               "9/9/9999": "%d/%m/%Y", "9999-99-99": "%Y-%m-%d", "99-99-9999": "%d-%m-%Y",
               "99.99.9999": "%d.%m.%Y"}
_NAME = {
    "key": r"^(customer_?(id|no|number)|client_?(id|no|number)|id_?cliente|cliente_?id|codigo(_?cliente)?|code|id"
           r"|user_?id|member_?id|n_?cliente|num_?cliente|kunden_?nr)$",
    "first_name": r"^(first_?name|nombre|given_?name|prenom|vorname)$",
    "last_name": r"^(last_?name|apellidos?|surname|family_?name|nom|nachname)$",
    "country": r"^(country|pa[ií]s|pais|land|pays)(_?code)?$",
    "postal_code": r"^(postal_?code|cp|c_?p|codigo_?postal|zip|zip_?code|plz)$",
    "city": r"^(city|ciudad|localidad|municipio|poblaci[oó]n|town|ville|stadt)$",
    "consent": r"consent|opt_?in|suscri|acepta|rgpd|gdpr|newsletter",
    "birth_date": r"birth|nacimiento|dob|fecha_?nac",
}


@dataclass
class Recognised:
    """Which column plays which part (None or empty when the export has none)."""

    key: str | None = None
    email: str | None = None
    phone: str | None = None
    national_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None
    country_code: str | None = None  # the most frequent country, when it is a 2-letter code
    birth_date: str | None = None
    consent: str | None = None
    dates: dict[str, list[str]] = field(default_factory=dict)  # column -> formats seen
    amounts: dict[str, bool] = field(default_factory=dict)  # column -> decimal comma
    text: list[str] = field(default_factory=list)
    personal: list[str] = field(default_factory=list)
    first: str = ""  # the first column (the customers id of segments.yaml when no key is found)


def _named(role: str, name: str) -> bool:
    """``E-mail Address`` and ``Given Name`` are matched as ``e_mail_address`` and ``given_name``."""
    import unicodedata

    folded = unicodedata.normalize("NFKD", name.lower()).encode("ascii", "ignore").decode()
    return re.search(_NAME[role], re.sub(r"[^a-z0-9]+", "_", folded).strip("_")) is not None


def recognise(con: duckdb.DuckDBPyConnection, table: str, profile: Profile) -> Recognised:
    """Give each column a part by its name first, its content second."""
    from crmtool.pii import detect_pii

    pii = detect_pii(con, table)
    rec = Recognised(personal=sorted(pii), first=profile.columns[0].name if profile.columns else "")
    by_name = {c.name: c for c in profile.columns}
    for c in profile.columns:
        category = pii[c.name].category if c.name in pii else None
        if c.type in ("text", "email") or c.type == "varchar":
            rec.text.append(c.name)
        if rec.key is None and _named("key", c.name) and c.distinct >= 0.9 * (profile.rows - c.nulls):
            rec.key = c.name
        if category == "email" and rec.email is None:
            rec.email = c.name
        elif category == "phone" and rec.phone is None:
            rec.phone = c.name
        elif category == "national_id" and rec.national_id is None:
            rec.national_id = c.name
        for role in ("first_name", "last_name", "country", "postal_code", "city", "consent", "birth_date"):
            if getattr(rec, role) is None and _named(role, c.name):
                setattr(rec, role, c.name)
                break
        formats = sorted({DATE_SHAPES[s] for s, _n in c.top_shapes if s in DATE_SHAPES})
        if formats and c.type in ("date", "text"):
            rec.dates[c.name] = formats
        if c.type == "decimal" and c.name not in (rec.phone, rec.postal_code, rec.key):
            rec.amounts[c.name] = any("," in s for s, _n in c.top_shapes)
    if rec.key is None:  # else the first column whose values are all there and all different
        rec.key = next((c.name for c in profile.columns if c.nulls == 0 and c.distinct == profile.rows
                        and c.name not in (rec.email, rec.phone)), None)
    if rec.country and by_name[rec.country].top_values:
        top = str(by_name[rec.country].top_values[0][0]).strip().upper()  # type: ignore[index]
        rec.country_code = top if re.fullmatch(r"[A-Z]{2}", top) else None
    rec.text = [c for c in rec.text if c not in rec.dates and c not in rec.amounts]
    return rec


def _rule(name: str, kind: str, column: str | list[str], **options: Any) -> dict[str, Any]:
    where = {"columns": column} if isinstance(column, list) else {"column": column}
    return {"name": name, "kind": kind, **where, **options}


def rules_document(rec: Recognised) -> dict[str, Any]:
    """The rule file: the dataset block, normalisers, then checks of the recognised columns."""
    rules: list[dict[str, Any]] = []
    if rec.text:
        rules.append(_rule("trim_text", "trim", rec.text))
    names = [c for c in (rec.first_name, rec.last_name, rec.city) if c]
    if names:
        rules.append(_rule("repair_mojibake", "mojibake", names))
        rules.append(_rule("names_title_case", "case", names, to="title"))
    if rec.email:
        rules.append(_rule("email_lowercase", "email_normalise", rec.email))
    for col, comma in rec.amounts.items():
        rules.append(_rule(f"{_slug(col)}_decimal", "decimal", col, decimal_comma=comma))
    if rec.key:
        rules.append(_rule("id_required", "required", rec.key, action="reject"))
        rules.append(_rule("id_unique", "unique", rec.key, action="reject"))
    if rec.email:
        rules.append(_rule("email_syntax", "email", rec.email, action="fix", threshold="5%"))
        rules.append(_rule("email_suspicious", "email_risk", rec.email, severity="warning",
                           reasons=["disposable", "typo_domain", "random_local", "role"]))
    if rec.phone:
        region = {"region": rec.country_code} if rec.country_code else {"region": "ES"}
        rules.append(_rule("phone_valid", "phone", rec.phone, action="fix", severity="warning", **region))
    if rec.national_id and rec.country_code in (None, "ES"):
        rules.append(_rule("national_id_valid", "national_id", rec.national_id, type="any", action="fix",
                           severity="warning"))
    for col, formats in rec.dates.items():
        rules.append(_rule(f"{_slug(col)}_valid", "date", col, formats=formats, action="fix", severity="warning"))
    if rec.postal_code and rec.country_code == "ES":
        rules.append(_rule("postal_code_valid", "postal_code", rec.postal_code, country="ES", severity="warning"))
    dataset: dict[str, Any] = {}
    if rec.key:
        dataset["key"] = rec.key
    if rec.personal:
        dataset["personal_data"] = rec.personal
    dataset["max_unparseable"] = 0
    return {"version": 1, "dataset": dataset, "rules": rules}


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip()).strip("_").lower() or "column"


def dedupe_document(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, Any] | None:
    """The ``dedupe:`` section the dedupe feature suggests for the loaded export.

    None when no column looks like a person's identifier or no blocking rule fits (the suggester
    says why with an :class:`~crmtool.errors.InputError`): the starter then has no dedupe file.
    """
    from crmtool.dedupe.suggest import suggest_dedupe_section
    from crmtool.errors import InputError

    try:
        section = suggest_dedupe_section(con, table)
    except InputError:
        return None
    return {"version": 1, "dedupe": section}


def segments_document(rec: Recognised) -> dict[str, Any]:
    """A small segments.yaml: who can be emailed, and everyone, over the recognised columns."""
    customers: dict[str, Any] = {"id": rec.key or rec.first}
    for part in ("email", "phone"):
        if getattr(rec, part):
            customers[part] = getattr(rec, part)
    # without a consent column the send lists are built without a consent check (null says so)
    customers["consent"] = rec.consent
    if rec.country_code:
        customers["phone_region"] = rec.country_code
    columns = [c for c in (rec.key, rec.first_name, rec.email) if c]
    segments: list[dict[str, Any]] = []
    if rec.email:
        segments.append({"name": "with_email", "description": "customers with an email address",
                         "when": {"field": rec.email, "is_null": False}})
    segments.append({"name": "everyone", "description": "every customer (a send list to start from)",
                     "when": {"field": rec.key or rec.first, "is_null": False}})
    return {"version": 1, "inputs": {"customers": customers},
            "output": {"format": "csv", "columns": columns}, "segments": segments}


HEADERS = {
    RULES_FILE: "Starter rules written by 'crmtool init' from the profile of {source}.\n"
                "Edit freely: 'crmtool rules lint' checks this file, 'crmtool rules schema' gives editors\n"
                "its JSON Schema. max_unparseable 0: a single unparseable row fails validate and clean.",
    DEDUPE_FILE: "Starter deduplication written by 'crmtool init' from {source}: which rows are the same\n"
                 "person. Run: crmtool dedupe EXPORT --rules rules/ --out out/",
    SEGMENTS_FILE: "Starter segments written by 'crmtool init' from {source}. Check: crmtool segment check\n"
                   "Run: crmtool segment EXPORT --segments segments.yaml --out out/",
}


class _PlainDumper(yaml.SafeDumper):
    """Safe YAML without anchors: a list used twice is written out twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(path: Path, document: dict[str, Any], source: str) -> str:
    header = "".join(f"# {line}\n" for line in HEADERS[path].format(source=source).splitlines())
    body = yaml.dump(document, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, default_flow_style=None,
                     width=100)
    return header + body


@dataclass
class InitResult:
    written: list[Path]
    recognised: Recognised

    @property
    def status(self) -> Status:
        """Pass: the starter files were written (an existing file without --force raises)."""
        return Status.PASS

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"written": [str(p) for p in self.written], "recognised": asdict(self.recognised)}


def write_starter(con: duckdb.DuckDBPyConnection, table: str, profile: Profile, folder: Path, source: str, *,
                  force: bool = False) -> InitResult:
    """Write the starter files into ``folder``; refuse (writing nothing) when one exists, unless ``force``."""
    from crmtool.io.writers import write_text_atomic

    rec = recognise(con, table, profile)
    docs: dict[Path, dict[str, Any]] = {RULES_FILE: rules_document(rec)}
    dedupe = dedupe_document(con, table)
    if dedupe is not None:
        docs[DEDUPE_FILE] = dedupe
    docs[SEGMENTS_FILE] = segments_document(rec)
    existing = [folder / p for p in docs if (folder / p).exists()]
    if existing and not force:
        raise UsageError(f"{', '.join(str(p) for p in existing)} already exist{'s' if len(existing) == 1 else ''}; "
                         f"nothing written", "pass --force to replace them, or run init in another folder")
    texts = {folder / p: render(p, d, source) for p, d in docs.items()}
    for path, text in texts.items():
        write_text_atomic(path, text)
    return InitResult(list(texts), rec)
