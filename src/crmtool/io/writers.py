"""Write outputs atomically (temp file in the same folder, fsync, rename).

A reader never sees a half-written file, and a run that fails leaves the previous output in
place. CSV output is UTF-8 unless asked otherwise, and cells that a spreadsheet would run as a
formula are neutralised with a leading apostrophe (OWASP's advice), except cells that are plain
numbers or phone numbers, which cannot carry a formula.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.errors import UsageError

if TYPE_CHECKING:
    import duckdb

FORMATS = ("csv", "parquet")
FORMULA_TRIGGER = r"^[=+\-@\t\r]"
HARMLESS_NUMBER = r"^[+-]?[0-9][0-9 ().,-]*$"
#: the characters FORMULA_TRIGGER can start with, as SQL
FIRST_CHARACTERS = ("'='", "'+'", "'-'", "'@'", "chr(9)", "chr(13)")


_user_umask: int | None = None  # the user's umask while a workspace holds the process's at 077


def remember_user_umask(umask: int | None) -> None:
    """Outputs keep the permissions the user's umask gives, while the workspace is owner-only."""
    global _user_umask
    _user_umask = umask


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:  # e.g. --out below a file, or a read-only folder
        raise UsageError(f"cannot write {target} ({exc.strerror})", "choose an output folder you can write to") \
            from None
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file owner-only; an output gets the usual permissions (as DuckDB's COPY gives)
    umask = os.umask(0)
    os.umask(umask)
    mode = 0o666 & ~(umask if _user_umask is None else _user_umask)
    os.chmod(tmp, mode)
    try:
        yield tmp
        os.chmod(tmp, mode)  # DuckDB's COPY may have made the file anew
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(target: Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _neutralised_select(con: duckdb.DuckDBPyConnection, query: str) -> str:
    cols = con.execute(f"DESCRIBE ({query})").fetchall()
    parts = []
    for name, ctype, *_ in cols:
        ident = '"' + name.replace('"', '""') + '"'
        if ctype == "VARCHAR":
            # a cheap first-character test keeps the regexes off almost every cell. Not an IN
            # list: DuckDB plans one of six or more values as a hash join, which loses row order
            first = " OR ".join(f"left({ident}, 1) = {c}" for c in FIRST_CHARACTERS)
            parts.append(
                f"CASE WHEN ({first}) "
                f"AND regexp_matches({ident}, '{FORMULA_TRIGGER}') "
                f"AND NOT regexp_matches({ident}, '{HARMLESS_NUMBER}') "
                f"THEN '''' || {ident} ELSE {ident} END AS {ident}"
            )
        else:
            parts.append(ident)
    return f"SELECT {', '.join(parts)} FROM ({query})"


def write_query(con: duckdb.DuckDBPyConnection, query: str, target: Path, fmt: str, *,
                encoding: str = "utf-8", neutralise_formulas: bool = True, delimiter: str = ",") -> None:
    """Write the result of ``query`` (ordered by the caller) to ``target`` atomically."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown output format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    with atomic_path(target) as tmp:
        dest = str(tmp).replace("'", "''")  # a folder such as o'brien/ must not break the SQL
        if fmt == "parquet":
            con.execute(f"COPY ({query}) TO '{dest}' (FORMAT parquet, COMPRESSION zstd)")
            return
        select = _neutralised_select(con, query) if neutralise_formulas else query
        delim = delimiter.replace("'", "''")
        con.execute(f"COPY ({select}) TO '{dest}' (FORMAT csv, HEADER, DELIMITER '{delim}')")
        if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
            _transcode(tmp, encoding)


def _transcode(path: Path, encoding: str) -> None:
    try:
        "".encode(encoding)
    except LookupError:
        raise UsageError(f"unknown encoding {encoding!r}", "try utf-8, cp1252 or latin-1") from None
    text = path.read_text(encoding="utf-8")
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError as exc:
        # name the character by its code point only: the text around it is customer data
        line = text.count("\n", 0, exc.start) + 1
        raise UsageError(f"the output has characters that {encoding} cannot hold "
                         f"(U+{ord(exc.object[exc.start]):04X} on line {line})", "use --encoding utf-8") from None
    path.write_bytes(data)
