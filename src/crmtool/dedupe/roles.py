"""What a column holds, guessed from its name: the vocabulary shared by the household model's defaults
and :mod:`crmtool.dedupe.suggest` (English, Spanish, French, German, Portuguese spellings).

Plain data and one function; no DuckDB here. Content checks (share of values that parse as a date, an
email, a phone) live in :mod:`crmtool.dedupe.suggest`.
"""

from __future__ import annotations

import re

#: role -> name pattern (matched against the lower-cased column name with accents stripped)
ROLE_NAMES: dict[str, str] = {
    "id": r"^(id|rec_?id|record_?id|customer_?id|client_?id|cliente_?id|id_?cliente|id_?customer|codigo|"
    r"customer_?(no|number)|uuid|key)$",
    "email": r"e_?mail|correo|courriel",
    "phone": r"phone|tel[eé]?f|^tel$|movil|mobile|cell|fijo|landline|telephone",
    "national_id": r"national_?id|nif|^dni|^nie$|ssn|soc_?sec|passport|tax_?id|cpf|steuer|nir$|cedula",
    "birth_date": r"birth|dob|nacimiento|naissance|geburt|nascimento|f_?nac",
    "first_name": r"first_?name|given_?name|forename|^nombre$|^name_?first|prenom|vorname|primeiro",
    "last_name": r"last_?name|surname|family_?name|apellido|^nom$|nachname|sobrenome|apelido",
    "full_name": r"^(full_?)?name$|nombre_?completo|nom_?complet",
    "street_number": r"street_?(no|num|number)|house_?(no|num|number)|numero|^num$|^number$",
    "address": r"address|street|calle|direcci|domicil|adresse|strasse|morada|^via$",
    "postal_code": r"post_?code|postal|zip|^cp$|codigo_?postal|plz|cep$",
    "city": r"city|ciudad|town|suburb|localidad|municipio|poblacion|ville|stadt|cidade",
    "region": r"^state$|province|provincia|region|county|^estado$",
    "country": r"country|pais|pays",
    "gender": r"gender|sex|sexo|genero",
}
#: roles that are one fact for people who share a home (the household comparison group)
HOME_ROLES = ("email", "phone", "street_number", "address", "postal_code", "city", "region")
_NOT_A_VALUE = re.compile(r"consent|opt_?in|opt_?out|date|fecha|_at$|flag|valid|status|count|score|type$")
_COMPILED = {role: re.compile(p) for role, p in ROLE_NAMES.items()}


def _plain(name: str) -> str:
    import unicodedata

    text = unicodedata.normalize("NFKD", name.strip().lower())
    return re.sub(r"[^a-z0-9]+", "_", "".join(c for c in text if not unicodedata.combining(c))).strip("_")


def role_of(column: str) -> str | None:
    """The first role whose name pattern the column name matches (None when none does)."""
    name = _plain(column)
    if _COMPILED["birth_date"].search(name):
        return "birth_date"
    if _NOT_A_VALUE.search(name):  # email_consent, signup_date, phone_valid: about a value, not one
        return None
    for role, pattern in _COMPILED.items():
        if pattern.search(name):
            return role
    return None
