"""Prepare the records: one row per record with every normalised feature blocking and comparisons need.

Features are DuckDB SQL over the input row (text normalisation, email parts, phone digits, dates)
except the phonetic key and the nickname canonical form, which DuckDB computes once per distinct
normalised value (a table each) and joins back. Record ids must be unique and present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crmtool.dedupe.names import nickname_table, phonetic_table_sql
from crmtool.dedupe.spec import DedupeSpec
from crmtool.errors import ConfigError, InputError
from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb

PY_TRANSFORMS = ("phonetic", "nickname")  # mapped once per distinct value (a table each), joined back
#: cheap features taken from another feature in the final select: transform -> (source transform, SQL)
DERIVED: dict[str, tuple[str, str]] = {
    "initial": ("text", "left({x}, 1)"), "prefix2": ("text", "left({x}, 2)"), "prefix3": ("text", "left({x}, 3)"),
    "prefix4": ("text", "left({x}, 4)"), "first_token": ("text", "split_part({x}, ' ', 1)"),
    "last_token": ("text", "regexp_extract({x}, '([^ ]+)$', 1)"),
    "email_local": ("email", "nullif(split_part({x}, '@', 1), '')"),
    "email_domain": ("email", "nullif(split_part({x}, '@', 2), '')"),
}
#: features each comparison method reads: (transform of the column, transform of swap_with or None)
METHOD_FEATURES: dict[str, tuple[str, ...]] = {
    "exact": ("text",),
    "name": ("text", "nickname", "phonetic"),
    "surname": ("text", "phonetic"),
    "jaro_winkler": ("text",),
    "levenshtein": ("text",),
    "token_set": ("text",),
    "phonetic": ("text", "phonetic"),
    "date": ("date",),
    "numeric": ("number",),
    "email": ("email", "email_local"),
    "phone": ("phone",),
}


def text_sql(v: str) -> str:
    """Lower case, accents stripped, every run of non-letters/digits -> one space (other scripts kept)."""
    return f"nullif(trim(regexp_replace(lower(strip_accents({v})), '[^\\pL\\pN]+', ' ', 'g')), '')"


def feature_sql(v: str, transform: str, date_formats: tuple[str, ...]) -> str:
    """SQL of a feature over the VARCHAR expression ``v`` (phonetic/nickname are mapped in Python)."""
    if transform == "exact":
        return f"nullif(trim({v}), '')"
    if transform in ("text", "name", "phonetic", "nickname"):
        return text_sql(v)
    if transform in ("email", "email_local", "email_domain"):
        # string functions only (no regex): lower, trim, drop a +tag, gmail ignores dots in the local part
        e = f"lower(trim({v}))"
        domain = f"split_part({e}, '@', 2)"
        plain = f"split_part(split_part({e}, '@', 1), '+', 1)"
        local = f"CASE WHEN {domain} IN ('gmail.com', 'googlemail.com') THEN replace({plain}, '.', '') ELSE {plain} END"
        valid = f"strpos({e}, '@') > 1 AND length({domain}) > 0"
        if transform == "email_local":
            return f"CASE WHEN {valid} THEN nullif({local}, '') END"
        if transform == "email_domain":
            return f"CASE WHEN {valid} THEN {domain} END"
        return f"CASE WHEN {valid} THEN {local} || '@' || {domain} END"
    if transform == "phone":
        d = f"regexp_replace({v}, '[^0-9]', '', 'g')"
        return f"CASE WHEN length({d}) >= 6 THEN right({d}, 9) END"
    if transform == "digits":
        return f"nullif(regexp_replace({v}, '[^0-9]', '', 'g'), '')"
    if transform in ("date", "year"):
        tries = [f"try_cast(trim({v}) AS DATE)"] + [
            f"CAST(try_strptime(trim({v}), {sql_str(f)}) AS DATE)" for f in date_formats
        ]
        # the two commonest shapes first (cheap), then every format in turn
        day_first = ""
        if date_formats and date_formats[0] == "%d/%m/%Y":
            day_first = (f"WHEN regexp_full_match(trim({v}), '\\d\\d/\\d\\d/\\d{{4}}') "
                         f"THEN CAST(try_strptime(trim({v}), '%d/%m/%Y') AS DATE) ")
        date = (f"CASE WHEN regexp_full_match(trim({v}), '\\d{{4}}-\\d\\d-\\d\\d') THEN try_cast(trim({v}) AS DATE) "
                f"{day_first}ELSE coalesce({', '.join(tries)}) END")
        return date if transform == "date" else f"CAST(year({date}) AS VARCHAR)"
    if transform == "number":
        return f"try_cast(replace(replace(trim({v}), ' ', ''), ',', '.') AS DOUBLE)"
    t = text_sql(v)
    if transform == "initial":
        return f"left({t}, 1)"
    if transform.startswith("prefix"):
        return f"left({t}, {int(transform[6:])})"
    if transform == "first_token":
        return f"split_part({t}, ' ', 1)"
    if transform == "last_token":
        return f"regexp_extract({t}, '([^ ]+)$', 1)"
    raise ValueError(f"unknown transform {transform}")


@dataclass
class Prepared:
    """The prepared table ``table`` (``__rid`` dense 0..n-1 in id order, ``__id``) and its feature columns."""

    table: str
    rows: int
    features: dict[tuple[str, str], str] = field(default_factory=dict)
    block_keys: list[str] = field(default_factory=list)
    tf: dict[str, str] = field(default_factory=dict)  # comparison name -> tf column
    row_join: bool = False  # ``__trow`` holds the input table's rowid (a cheap join back)

    def f(self, column: str, transform: str) -> str:
        return self.features[(column, transform)]


def needed_features(spec: DedupeSpec) -> list[tuple[str, str]]:
    need: list[tuple[str, str]] = []
    for b in spec.blocking:
        need.extend(b.terms)
    for c in spec.comparisons:
        for t in METHOD_FEATURES[c.method]:
            need.append((c.column, t))
            if c.swap_with and t in ("text",):
                need.append((c.swap_with, t))
    for col, t in list(need):
        if t in PY_TRANSFORMS:
            need.append((col, "text"))
        elif t in DERIVED:
            need.append((col, DERIVED[t][0]))
    return list(dict.fromkeys(need))


def check_ids(con: duckdb.DuckDBPyConnection, table: str, id_column: str) -> int:
    """Rows in ``table``; an InputError when ids are missing or repeated."""
    idc = ident(id_column)
    row = con.execute(
        f"SELECT count(*), count(nullif(trim(CAST({idc} AS VARCHAR)), '')), "
        f"count(DISTINCT trim(CAST({idc} AS VARCHAR))) FROM {ident(table)}"
    ).fetchall()[0]
    total, present, distinct = (int(x) for x in row)
    if present < total:
        raise InputError(
            f"dedupe: {total - present} rows have no id in column '{id_column}'",
            "every record needs a unique id: fill it, or reject those rows first",
        )
    if distinct < total:
        raise InputError(
            f"dedupe: column '{id_column}' repeats {total - distinct} ids: ids must be unique",
            "run 'crmtool clean' with a unique rule on the id, or pick another id column",
        )
    return total


#: a column whose distinct values are at most this share of the rows has its SQL features computed once
#: per distinct value (a small table joined back) instead of once per row: names, cities, postcodes and
#: birth dates repeat, so the regex work of normalising them shrinks by the repetition
PER_VALUE_SHARE = 0.5


def _sql_features(con: duckdb.DuckDBPyConnection, table: str, spec: DedupeSpec,
                  by_column: dict[str, list[tuple[str, str]]], rows: int) -> tuple[dict[str, str], list[str]]:
    """(feature name -> select item, joins) of the SQL features over the input rows ``t``.

    Every feature is a function of its column's text alone, so computing it per distinct value gives the
    same value for every row; that is done for repetitive columns (see :data:`PER_VALUE_SHARE`, judged by
    ``approx_count_distinct`` in one scan), the others are computed row by row."""
    from crmtool.db import setting_for

    cols = list(by_column)
    distinct: list[int] = []
    if cols and rows:
        counts = ", ".join(f"approx_count_distinct(CAST({ident(c)} AS VARCHAR))" for c in cols)
        distinct = [int(x) for x in con.execute(f"SELECT {counts} FROM {ident(table)}").fetchall()[0]]
    items: dict[str, str] = {}
    joins: list[str] = []
    for k, col in enumerate(cols):
        value = f"CAST(t.{ident(col)} AS VARCHAR)"
        if not distinct or distinct[k] > rows * PER_VALUE_SHARE:
            items.update({n: f"{feature_sql(value, tf, spec.date_formats)} AS {n}" for tf, n in by_column[col]})
            continue
        m = f"__dd_vmap{len(joins)}"
        mapped = ", ".join(f"{feature_sql('v', tf, spec.date_formats)} AS {name}" for tf, name in by_column[col])
        with setting_for(con, "disabled_optimizers", "statistics_propagation"):
            con.execute(f"CREATE OR REPLACE TEMP TABLE {m} AS SELECT v, {mapped} "
                        f"FROM (SELECT DISTINCT {value} AS v FROM {ident(table)} t WHERE {value} IS NOT NULL)")
        alias = f"vm{len(joins)}"
        joins.append(f"LEFT JOIN {m} {alias} ON {alias}.v = {value}")
        items.update({name: f"{alias}.{name}" for _, name in by_column[col]})
    return items, joins


def _check_columns(con: duckdb.DuckDBPyConnection, table: str, spec: DedupeSpec) -> None:
    """Refuse user SQL over unknown columns and columns the rules name that the data lacks."""
    have = [r[0] for r in con.execute(f"DESCRIBE {ident(table)}").fetchall()]
    from crmtool.dedupe.spec import sql_problems

    sql_found = sql_problems(spec, have)  # user SQL over columns the data has, before any work
    if sql_found:
        raise ConfigError(sql_found, "see the dedupe section of the rule-file reference")
    missing = [c for c in spec.columns() if c not in have]
    if missing:
        raise InputError(
            f"dedupe: column(s) {', '.join(missing)} named in the dedupe rules are not in the data",
            f"columns: {', '.join(c for c in have if c != '_row')}",
        )


def _name_features(prep: Prepared, spec: DedupeSpec) -> dict[str, list[tuple[str, str]]]:
    """Name every needed feature in ``prep``; column -> (transform, name) of those computed in SQL."""
    by_column: dict[str, list[tuple[str, str]]] = {}
    for i, (col, transform) in enumerate(needed_features(spec)):
        name = f"f{i}_{transform}"
        prep.features[(col, transform)] = name
        if transform not in PY_TRANSFORMS and transform not in DERIVED:
            by_column.setdefault(col, []).append((transform, name))
    return by_column


def _base_table(con: duckdb.DuckDBPyConnection, table: str, spec: DedupeSpec, prep: Prepared,
                by_column: dict[str, list[tuple[str, str]]], base: str) -> None:
    """Create ``base``: ``__rid``, ``__id``, the SQL features and the SQL blocking keys of every input row."""
    from crmtool.db import setting_for

    items, value_joins = _sql_features(con, table, spec, by_column, prep.rows)
    sql_cols = [items[n] for n in prep.features.values() if n in items]  # in feature order, as before
    for j, b in enumerate(spec.blocking):
        prep.block_keys.append(f"bk{j}")
        if b.sql:
            sql_cols.append(f"CAST(({b.sql}) AS VARCHAR) AS bk{j}")
    idc = ident(spec.id_column)
    # DuckDB 2.0 fails to bind the email expressions over an all-NULL column when statistics
    # propagation folds them ("BindBuiltinScalarFunction did not return ..."): off for this statement
    kind = con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = ?", [table]).fetchall()
    prep.row_join = bool(kind) and kind[0][0] == "BASE TABLE"
    trow = "t.rowid AS __trow, " if prep.row_join else ""
    # (a workspace session's configuration is locked: there the setting stays; DuckDB 2.0.1 binds
    # the all-NULL case without it, tests/dedupe)
    with setting_for(con, "disabled_optimizers", "statistics_propagation"):
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {base} AS
            SELECT CAST(row_number() OVER (ORDER BY trim(CAST(t.{idc} AS VARCHAR))) - 1 AS INTEGER) AS __rid,
                   trim(CAST(t.{idc} AS VARCHAR)) AS __id, {trow}{", ".join(sql_cols)}
            FROM {ident(table)} t {" ".join(value_joins)}""")
    for k in range(len(value_joins)):
        con.execute(f"DROP TABLE IF EXISTS __dd_vmap{k}")


def _mapped_features(con: duckdb.DuckDBPyConnection, prep: Prepared, base: str) -> tuple[list[str], list[str]]:
    """Phonetic and nickname features, mapped once per distinct value into ``__dd_map_*``; (joins, select items)."""
    joins: list[str] = []
    extra: list[str] = []
    if any(t == "nickname" for _, t in prep.features):
        nick = nickname_table()
        con.execute("CREATE OR REPLACE TEMP TABLE __dd_nick (nick VARCHAR PRIMARY KEY, canon VARCHAR)")
        con.executemany("INSERT INTO __dd_nick VALUES (?, ?)", sorted(nick.items()))
    for (col, transform), name in prep.features.items():
        if transform not in PY_TRANSFORMS:
            continue
        src = prep.f(col, "text")
        distinct = f"(SELECT DISTINCT {src} AS v FROM {base} WHERE {src} IS NOT NULL) d"
        # computed by DuckDB once per distinct value, joined back below
        if transform == "phonetic":  # once per distinct word of the distinct values
            query = phonetic_table_sql(distinct)
        else:
            query = f"""SELECT d.v, CASE WHEN nf.canon IS NOT NULL THEN nf.canon
                    WHEN strpos(d.v, ' ') > 0 AND n1.canon IS NOT NULL THEN n1.canon || substr(d.v, strpos(d.v, ' '))
                    ELSE d.v END AS k, coalesce(n1.canon, split_part(d.v, ' ', 1)) AS k1
                FROM {distinct} LEFT JOIN __dd_nick nf ON nf.nick = d.v
                LEFT JOIN __dd_nick n1 ON n1.nick = split_part(d.v, ' ', 1)"""
        con.execute(f"CREATE OR REPLACE TEMP TABLE __dd_map_{name} AS {query}")
        mname = f"__dd_map_{name}"
        alias = f"m_{name}"
        joins.append(f"LEFT JOIN {mname} {alias} ON {alias}.v = b.{src}")
        extra.append(f"{alias}.k AS {name}")
        if transform == "nickname":
            extra.append(f"{alias}.k1 AS {name}_1")
    return joins, extra


def _block_key_items(spec: DedupeSpec, prep: Prepared) -> list[str]:
    """Select items of the blocking keys built from features (NULL when any part is missing)."""
    extra: list[str] = []
    for b_idx, b in enumerate(spec.blocking):
        if b.sql:
            continue
        parts = [prep.f(col, t) for col, t in b.terms]
        refs = []
        for p, (col, t) in zip(parts, b.terms, strict=True):
            if t in PY_TRANSFORMS:
                ref = f"m_{p}.k"
            elif t in DERIVED:
                ref = DERIVED[t][1].format(x=f"b.{prep.f(col, DERIVED[t][0])}")
            else:
                ref = f"b.{p}"
            refs.append(f"split_part({ref}, ' ', 1)" if t == "phonetic" else ref)
        null_check = " OR ".join(f"{r} IS NULL" for r in refs)
        key = " || chr(31) || ".join(f"CAST({r} AS VARCHAR)" for r in refs)
        extra.append(f"CASE WHEN {null_check} THEN NULL ELSE {key} END AS bk{b_idx}")
    return extra


def _term_frequency(spec: DedupeSpec, prep: Prepared, base: str) -> tuple[list[str], list[str]]:
    """Term-frequency columns of the comparisons that ask for them (named in ``prep.tf``); (joins, select items)."""
    joins: list[str] = []
    extra: list[str] = []
    for c in spec.comparisons:
        if c.term_frequency:
            k = len(prep.tf)
            prep.tf[c.name] = f"tf_{k}"
            main = prep.f(c.column, METHOD_FEATURES[c.method][0])
            # share of the records holding the value (GROUP BY + join: cheaper than a window)
            joins.append(f"LEFT JOIN (SELECT {main} AS v, count(*) / sum(count(*)) OVER () AS tf FROM {base} "
                         f"WHERE {main} IS NOT NULL GROUP BY {main}) tfj{k} ON tfj{k}.v = b.{main}")
            extra.append(f"tfj{k}.tf AS tf_{k}")
    return joins, extra


#: name comparisons whose words are taken out of the email's local part (see :func:`_email_rest_items`)
_NAME_METHODS = ("name", "surname")


def email_rest_sql(local: str, names: list[str]) -> str:
    """The local part ``local`` with the record's own name words (``names``: normalised text columns)
    taken out, then everything but letters and digits: ``xabier.diaz2941`` of Xabier Díaz -> ``2941``.

    Whole names first (``delafuente``), then their words of three letters or more. What is left is the
    part of the address that the names do not explain; two people of the same name share the rest only
    by chance."""
    whole = [f"[replace(coalesce({n}, ''), ' ', '')]" for n in names]
    words = [f"list_filter(string_split(coalesce({n}, ''), ' '), lambda w: length(w) >= 3)" for n in names]
    tokens = f"list_filter(list_concat({', '.join(whole + words)}), lambda w: length(w) >= 2)" if names else "[]"
    clean = f"regexp_replace(strip_accents({local}), '[^a-z0-9]', '', 'g')"
    return f"list_reduce(list_concat([{clean}], {tokens}), lambda acc, w: replace(acc, w, ''))"


def name_email_rest(spec: DedupeSpec, prep: Prepared) -> list[str]:
    """Name each email comparison's ``email_rest`` feature in ``prep`` (see :func:`email_rest_sql`); the
    email columns, once each."""
    columns = list(dict.fromkeys(c.column for c in spec.comparisons if c.method == "email"))
    for col in columns:
        prep.features[(col, "email_rest")] = f"{prep.f(col, 'email_local')}_rest"
    return columns


def _email_rest_items(spec: DedupeSpec, prep: Prepared) -> list[str]:
    """Select items of the ``email_rest`` features (see :func:`email_rest_sql`)."""
    names = list(dict.fromkeys(prep.f(c.column, "text") for c in spec.comparisons if c.method in _NAME_METHODS))
    items: list[str] = []
    for col in name_email_rest(spec, prep):
        source, expr = DERIVED["email_local"]
        local = expr.format(x=f"b.{prep.f(col, source)}")
        rest = email_rest_sql(local, [f"b.{n}" for n in names])
        items.append(f"{rest} AS {prep.f(col, 'email_rest')}")
    return items


def prepare(con: duckdb.DuckDBPyConnection, table: str, spec: DedupeSpec, out_table: str) -> Prepared:
    """Build ``out_table`` from ``table``; see :class:`Prepared`."""
    _check_columns(con, table, spec)
    prep = Prepared(out_table, check_ids(con, table, spec.id_column))
    by_column = _name_features(prep, spec)
    base = f"__dd_base_{out_table}"
    _base_table(con, table, spec, prep, by_column, base)
    joins, extra = _mapped_features(con, prep, base)
    extra += _block_key_items(spec, prep)
    for (col, transform), name in prep.features.items():
        if transform in DERIVED:
            source, expr = DERIVED[transform]
            extra.append(f"{expr.format(x=f'b.{prep.f(col, source)}')} AS {name}")
    extra += _email_rest_items(spec, prep)
    tf_joins, tf_extra = _term_frequency(spec, prep, base)
    joins += tf_joins
    extra += tf_extra
    select_extra = (", " + ", ".join(extra)) if extra else ""
    con.execute(
        f"CREATE OR REPLACE TABLE {ident(out_table)} AS SELECT b.*{select_extra} FROM {base} b "
        f"{' '.join(joins)}"
    )
    for (_col, transform), name in prep.features.items():
        if transform in PY_TRANSFORMS:
            con.execute(f"DROP TABLE IF EXISTS __dd_map_{name}")
    con.execute(f"DROP TABLE IF EXISTS {base}")
    return prep
