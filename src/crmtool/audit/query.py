"""Reading a log: its chain records, and entries by record, rule or run over the change sets.

The change sets of a run are sorted by record key hash, so a look-up of one record reads only
the row groups whose min/max range holds it (DuckDB prunes the rest from the Parquet footers).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crmtool.audit.format import CHAIN, TOKEN_PREFIX
from crmtool.errors import InputError
from crmtool.sqltext import sql_path

#: columns of a change set that hold a record's keyed hash (``identifier``: a person's identifier,
#: as the chain's events have it, e.g. the suppressions a run added)
RECORD_COLUMNS = ("record", "other", "cluster", "identifier")
#: ``action`` as the entries of format 1 had it, per entry type
_ACTIONS = {"change": "fix", "reject": "reject"}
#: columns stored as JSON text
_JSON_COLUMNS = frozenset({"old", "new", "levels"})


def iter_entries(log: Path) -> Iterator[dict[str, Any]]:
    """The chain records in order (run headers, events, seals); not verified (see verify_log)."""
    from crmtool.audit.verify import refuse_format1

    chain = log / CHAIN
    if not chain.is_file():
        refuse_format1(log)
        raise InputError(f"{log}: no audit log here ({CHAIN} missing)")
    with chain.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                return  # a write cut off by a crash; the next run cuts it back
            try:
                entry = json.loads(raw.decode("utf-8"))
            except ValueError:
                raise InputError(f"{chain}:{n}: not a crmtool audit record", "run 'crmtool audit verify'") from None
            if not isinstance(entry, dict):
                raise InputError(f"{chain}:{n}: not a crmtool audit record", "run 'crmtool audit verify'")
            yield entry


def _may_hold(item: dict[str, Any], record: str | None, rule: str | None) -> bool:
    """Whether a change set file can hold rows of ``record`` and ``rule``, by its seal entry's index:
    ``records`` (range of first hex digits), ``rules`` (the rules it holds), ``record_prefixes``."""
    if record is not None:
        token = record[len(TOKEN_PREFIX):]
        span = item.get("records")
        if span and not span[0] <= token[:1] <= span[1]:
            return False
        prefixes = item.get("record_prefixes")
        if prefixes is not None and token[:4] not in prefixes:
            return False
    rules = item.get("rules")
    return rule is None or rules is None or rule in rules


def _sets(log: Path, run: str | None, record: str | None, rule: str | None = None,
          entries: list[dict[str, Any]] | None = None) -> dict[str, list[tuple[Path, str]]]:
    """Change set files of sealed runs with their run, by kind, in run order; only those whose
    index (in the seal) says they can hold ``record`` and ``rule``."""
    by_kind: dict[str, list[tuple[Path, str]]] = {}
    for entry in entries if entries is not None else iter_entries(log):
        if entry.get("type") != "seal" or (run is not None and entry.get("run") != run):
            continue
        for item in entry.get("sets") or []:
            if _may_hold(item, record, rule):
                by_kind.setdefault(str(item["kind"]), []).append((log / item["file"], str(entry.get("run"))))
    return by_kind


def show(log: Path, *, record_token: str | None = None, run: str | None = None,
         rule: str | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Entries matching every filter given: chain events first, then change set rows, by run;
    at most ``limit`` of them (rows are streamed, never all held at once).

    ``record_token`` is the keyed hash of the record key (without ``k:``).
    """
    record = TOKEN_PREFIX + record_token if record_token is not None else None
    left = limit if limit is not None else -1
    if left == 0:
        return
    seals: list[dict[str, Any]] = []
    for entry in iter_entries(log):
        if entry.get("type") == "seal":
            seals.append(entry)
        if run is not None and entry.get("run") != run:
            continue
        if rule is not None and entry.get("rule") != rule:
            continue
        if record is not None and record not in (entry.get("record"), entry.get("identifier")):
            continue
        yield entry
        left -= 1
        if left == 0:
            return
    import duckdb

    con = duckdb.connect()
    try:
        for kind, files in _sets(log, run, record, rule, seals).items():
            for entry in _set_rows(con, kind, files, record=record, rule=rule, limit=left if left > 0 else None):
                yield entry
                left -= 1
                if left == 0:
                    return
    finally:
        con.close()



def _set_rows(con: Any, kind: str, files: list[tuple[Path, str]], *, record: str | None,
              rule: str | None, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Rows of the files matching ``record`` and ``rule``, streamed a batch at a time; DuckDB reads
    only the row groups whose min/max (Parquet footer) can hold them."""
    runs = {str(path): run for path, run in files}
    listing = "[" + ", ".join(sql_path(path) for path, _ in files) + "]"
    # every file of a kind has the same columns (the writer's query fixes them)
    source = f"read_parquet({listing}, filename = true)"
    columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_path(files[0][0])})").fetchall()]
    where, params = [], []
    if rule is not None:
        if "rule" not in columns:
            return
        where.append("rule = ?")
        params.append(rule)
    if record is not None:
        cols = [c for c in RECORD_COLUMNS if c in columns]
        if not cols:
            return
        where.append("(" + " OR ".join(f'"{c}" = ?' for c in cols) + ")")
        params += [record] * len(cols)
    sql = f"SELECT * FROM {source}" + (" WHERE " + " AND ".join(where) if where else "")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    while batch := cur.fetchmany(10_000):  # a batch at a time (no Arrow: its import costs a look-up ~0.3 s)
        for values in batch:
            yield _entry(names, values, kind, runs)


@functools.lru_cache(maxsize=1 << 16)
def _parsed(text: str) -> Any:
    return json.loads(text)


def _json_value(text: str) -> Any:
    """A stored JSON value decoded; the values of a set repeat (dictionary pages), so each distinct
    text is parsed once (a list or object is parsed afresh: the caller may change it)."""
    value = _parsed(text)
    return json.loads(text) if isinstance(value, (list, dict)) else value


def _entry(names: list[str], values: tuple[Any, ...], kind: str, runs: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    run = ""
    for name, value in zip(names, values, strict=True):
        if value is None:
            continue
        if name == "filename":
            run = runs.get(str(value), "")
        elif name in _JSON_COLUMNS and isinstance(value, str):
            entry[name] = _json_value(value)
        else:
            entry[name] = value
    entry["run"] = run
    entry.setdefault("type", kind)
    if entry["type"] in _ACTIONS:
        entry["action"] = _ACTIONS[entry["type"]]
    return entry
