"""Write outputs atomically (temp file in the same folder, fsync, rename).

A reader never sees a half-written file, and a run that fails leaves the previous output in
place. How a CSV looks is one :class:`OutputOptions` that every writer takes (delimiter,
decimal comma, encoding, byte-order mark; ``excel-es`` sets them as a Spanish Excel expects).
CSV is UTF-8 with commas unless asked otherwise, and cells that a spreadsheet would run as a
formula are neutralised with a leading apostrophe (OWASP's advice), except cells that are plain
numbers or phone numbers, which cannot carry a formula. ``xlsx`` output needs the ``xlsx`` extra.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.errors import UsageError
from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb

FORMATS = ("csv", "parquet", "xlsx")
#: named CSV dialects: what the spreadsheet of a locale opens by double-click without an import dialog
DIALECTS: dict[str, dict[str, object]] = {
    "default": {},
    # Excel with Spanish (and most continental) regional settings: ';' lists, ',' decimals, and a
    # BOM so it reads UTF-8 rather than the ANSI code page
    "excel-es": {"delimiter": ";", "decimal_comma": True, "bom": True},
    # the same for an Excel that only reads the Windows code page
    "excel-es-ansi": {"delimiter": ";", "decimal_comma": True, "encoding": "cp1252"},
}


@dataclass(frozen=True)
class OutputOptions:
    """How every CSV a command writes looks (and whether formulas are neutralised in it)."""

    delimiter: str = ","
    decimal_comma: bool = False
    encoding: str = "utf-8"
    bom: bool = False
    neutralise_formulas: bool = True

    @classmethod
    def build(cls, dialect: str | None = None, *, delimiter: str | None = None, decimal_comma: bool | None = None,
              encoding: str | None = None, bom: bool | None = None, neutralise_formulas: bool = True) -> OutputOptions:
        """A dialect's settings, each overridden by the option given explicitly."""
        if dialect is not None and dialect not in DIALECTS:
            raise UsageError(f"unknown CSV dialect {dialect!r}", f"use one of {', '.join(DIALECTS)}")
        base = cls(**DIALECTS[dialect or "default"], neutralise_formulas=neutralise_formulas)  # type: ignore[arg-type]
        if delimiter is not None:
            delimiter = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(
                delimiter.lower(), delimiter)
            if len(delimiter) != 1 or delimiter in "\"\r\n":
                raise UsageError(f"--delimiter {delimiter!r}: give one character (or tab, comma, semicolon, pipe)")
            base = replace(base, delimiter=delimiter)
        if decimal_comma is not None:
            base = replace(base, decimal_comma=decimal_comma)
        if encoding is not None:
            base = replace(base, encoding=_check_encoding(encoding))
        if bom is not None:
            base = replace(base, bom=bom)
        if base.decimal_comma and base.delimiter == ",":
            raise UsageError("a decimal comma needs another delimiter than ','", "add --delimiter ';'")
        return base

    @property
    def utf8(self) -> bool:
        return self.encoding.lower().replace("_", "-") in ("utf-8", "utf8")


def options_as_written(path: Path, delimiter: str | None, encoding: str | None) -> OutputOptions:
    """The options that write a CSV back the way ``path`` was written, for a rewrite (an erasure, a
    retention run): its delimiter and encoding as the reader found them, and its byte-order mark.

    The file is read back as text, so what its dialect did to the values (a decimal comma, a
    neutralised formula) is in the text already and passes through unchanged: neither is applied
    again. The file's hash in ``crm_outputs`` says it is still as crmtool wrote it, so the reader's
    findings describe what the writer did."""
    with path.open("rb") as fh:
        bom = fh.read(3) == b"\xef\xbb\xbf"
    enc = (encoding or "utf-8").lower().replace("_", "-")
    return OutputOptions(delimiter=delimiter or ",", decimal_comma=False,
                         encoding="utf-8" if enc in ("utf-8", "utf8", "utf-8-sig") else str(encoding), bom=bom,
                         neutralise_formulas=False)


def _check_encoding(encoding: str) -> str:
    try:
        "".encode(encoding)
    except LookupError:
        raise UsageError(f"unknown encoding {encoding!r}", "try utf-8, cp1252 or latin-1") from None
    return encoding


#: what a spreadsheet trims before it looks for a formula: spaces, line feeds, no-break and
#: ideographic spaces, a byte-order mark
_TRIMMED = (0x20, 0x0A, 0x0C, 0xA0, 0x3000, 0xFEFF)
#: the signs that start a formula, ASCII and full-width (＝ ＋ － ＠)
_SIGNS = (0x3D, 0x2B, 0x2D, 0x40, 0xFF1D, 0xFF0B, 0xFF0D, 0xFF20)
#: a cell is a formula to a spreadsheet when, after what it trims, it starts with a sign; or when
#: it starts with a tab or carriage return (OWASP)
FORMULA_TRIGGER = ("^[" + "".join(f"\\x{{{c:04X}}}" for c in _TRIMMED) + "]*["
                   + "".join(f"\\x{{{c:04X}}}" for c in _SIGNS) + "]|^[\\t\\r]")
HARMLESS_NUMBER = r"^ *[+-]?[0-9][0-9 ().,-]*$"
#: the characters FORMULA_TRIGGER can start with, as SQL
FIRST_CHARACTERS = tuple(f"chr({c})" for c in (*_TRIMMED, *_SIGNS, 9, 13))
#: first code points that FORMULA_TRIGGER never matches: the digits and 65-159 (letters, the rest
#: of ASCII, C1 controls); every character it can start with lies outside (checked below)
_NEVER_FIRST = ((48, 57), (65, 159))
if any(lo <= c <= hi for c in (*_TRIMMED, *_SIGNS, 9, 13) for lo, hi in _NEVER_FIRST):
    raise AssertionError("a formula's first character lies in _NEVER_FIRST")
#: a text cell that is a plain decimal number (``1170.41``): written ``1170,41`` with a decimal comma
PLAIN_DECIMAL = r"^[+-]?[0-9]+\.[0-9]+$"
# the same three tests in Python, for the few CSVs built cell by cell (one person's subject export);
# RE2's ``$`` is Python's ``\Z`` (Python's ``$`` also matches before a final line feed)
_FORMULA_PY = re.compile("^[" + "".join(f"\\u{c:04X}" for c in _TRIMMED) + "]*["
                         + "".join(f"\\u{c:04X}" for c in _SIGNS) + "]|^[\\t\\r]")
_HARMLESS_PY = re.compile(HARMLESS_NUMBER.removesuffix("$") + r"\Z")
_DECIMAL_PY = re.compile(PLAIN_DECIMAL.removesuffix("$") + r"\Z")


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
    except OSError as exc:  # a full disk (ENOSPC, EFBIG), a folder made read-only meanwhile ...
        raise UsageError(f"cannot write {target} ({exc.strerror or exc})",
                         "free some space or choose another output folder; the previous output is unchanged") \
            from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(target: Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def neutralised_sql(quoted: str) -> str:
    """SQL of a text cell as CSV writing puts it: an apostrophe before a formula (``quoted``: the
    cell as an SQL expression).

    A cheap first-character test keeps the regexes off almost every cell: the cell's first code
    point outside :data:`_NEVER_FIRST` (one ``unicode()``, at most three integer comparisons; not an
    IN list: DuckDB plans one of six or more values as a hash join, which loses row order).
    ``unicode('')`` is -1, so an empty cell goes on to the regexes, which leave it as it is."""
    c = f"unicode({quoted})"
    first = f"({c} < 48 OR {c} BETWEEN 58 AND 64 OR {c} > 159)"
    return (f"CASE WHEN {first} AND regexp_matches({quoted}, '{FORMULA_TRIGGER}') "
            f"AND NOT regexp_matches({quoted}, '{HARMLESS_NUMBER}') THEN '''' || {quoted} ELSE {quoted} END")


def _neutralised_select(con: duckdb.DuckDBPyConnection, query: str) -> str:
    cols = con.execute(f"DESCRIBE ({query})").fetchall()
    parts = []
    for name, ctype, *_ in cols:
        quoted = ident(name)
        parts.append(f"{neutralised_sql(quoted)} AS {quoted}" if ctype == "VARCHAR" else quoted)
    return f"SELECT {', '.join(parts)} FROM ({query})"


def _decimal_comma_select(con: duckdb.DuckDBPyConnection, query: str) -> str:
    """Numbers written with a decimal comma (``12,5``), as a Spanish spreadsheet reads them: typed
    decimals, and text cells that are a plain decimal number (``1170.41``, as the decimal rule
    writes amounts); other text (``1.2.3.4``, ``v1.5b``) stays as it is."""
    cols = con.execute(f"DESCRIBE ({query})").fetchall()
    parts = []
    for name, ctype, *_ in cols:
        quoted = ident(name)
        if ctype.startswith(("DECIMAL", "DOUBLE", "FLOAT", "REAL")):
            parts.append(f"replace(CAST({quoted} AS VARCHAR), '.', ',') AS {quoted}")
        elif ctype == "VARCHAR":
            parts.append(f"CASE WHEN regexp_matches({quoted}, '{PLAIN_DECIMAL}') "
                         f"THEN replace({quoted}, '.', ',') ELSE {quoted} END AS {quoted}")
        else:
            parts.append(quoted)
    return f"SELECT {', '.join(parts)} FROM ({query})"


def write_query(con: duckdb.DuckDBPyConnection, query: str, target: Path, fmt: str, *,
                options: OutputOptions | None = None, encoding: str | None = None,
                neutralise_formulas: bool | None = None, delimiter: str | None = None) -> None:
    """Write the result of ``query`` (ordered by the caller) to ``target`` atomically.

    ``options`` says how a CSV looks; ``encoding``, ``neutralise_formulas`` and ``delimiter``
    override single settings of it (older call sites).
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown output format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    opts = options or OutputOptions()
    if encoding is not None:
        opts = replace(opts, encoding=encoding)
    if neutralise_formulas is not None:
        opts = replace(opts, neutralise_formulas=neutralise_formulas)
    if delimiter is not None:
        opts = replace(opts, delimiter=delimiter)
    import duckdb

    from crmtool.io.gate import writable

    with atomic_path(target) as tmp:
        select = _neutralised_select(con, query) if opts.neutralise_formulas and fmt != "parquet" else query
        if fmt == "xlsx":  # written by polars from Python: no file access by the session
            _write_xlsx(con, select, tmp)
            return
        # a workspace session writes only in its sandbox: the file is moved to tmp afterwards
        with writable(con, tmp) as name:
            dest = sql_str(name)  # a folder such as o'brien/ must not break the SQL
            try:
                if fmt == "parquet":
                    con.execute(f"COPY ({query}) TO {dest} (FORMAT parquet, COMPRESSION zstd)")
                else:
                    if opts.decimal_comma:
                        select = _decimal_comma_select(con, select)
                    con.execute(f"COPY ({select}) TO {dest} (FORMAT csv, HEADER, DELIMITER {sql_str(opts.delimiter)})")
            except duckdb.IOException as exc:  # the disk filled up under DuckDB's writer
                raise OSError(f"DuckDB: {str(exc).splitlines()[0].rsplit(':', 1)[-1].strip()}") from None
        if fmt == "csv" and (not opts.utf8 or opts.bom):
            _transcode(tmp, opts.encoding, bom=opts.bom)


def cell_text(value: str, options: OutputOptions) -> str:
    """A text cell as :func:`write_query` writes it under ``options``: a formula neutralised, a
    plain decimal number with a decimal comma (the same tests as the SQL there)."""
    if options.neutralise_formulas and _FORMULA_PY.match(value) and not _HARMLESS_PY.match(value):
        value = "'" + value
    if options.decimal_comma and _DECIMAL_PY.match(value):
        value = value.replace(".", ",")
    return value


def write_rows(target: Path, header: Sequence[str], rows: Iterable[Sequence[str | int]],
               options: OutputOptions | None = None) -> None:
    """Write a few rows built in Python (one person's subject export, never a whole table) as CSV,
    atomically, looking as ``options`` say: delimiter, text cells through :func:`cell_text`,
    encoding and byte-order mark. Python's ``csv`` quoting, lines end in CR LF."""
    import csv
    import io

    opts = options or OutputOptions()
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=opts.delimiter)
    writer.writerow(header)
    writer.writerows([cell_text(v, opts) if isinstance(v, str) else v for v in row] for row in rows)
    data = _encoded(buf.getvalue(), opts.encoding, bom=opts.bom)
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def _write_xlsx(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> None:
    """One sheet with a header row; text stays text (ids keep their leading zeros)."""
    try:
        import xlsxwriter  # noqa: F401 - polars writes xlsx through it
    except ImportError:
        raise UsageError("writing xlsx needs the optional extra", "pip install 'crmtool[xlsx]'") from None
    import polars as pl

    from crmtool.db import fetch_arrow

    frame = pl.from_arrow(fetch_arrow(con, query))
    assert isinstance(frame, pl.DataFrame)
    frame.write_excel(target, worksheet="data", autofit=False)


def _transcode(path: Path, encoding: str, *, bom: bool = False) -> None:
    path.write_bytes(_encoded(path.read_text(encoding="utf-8"), encoding, bom=bom))


def _encoded(text: str, encoding: str, *, bom: bool = False) -> bytes:
    encoding = _check_encoding(encoding)
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError as exc:
        # name the character by its code point only: the text around it is customer data
        line = text.count("\n", 0, exc.start) + 1
        raise UsageError(f"the output has characters that {encoding} cannot hold "
                         f"(U+{ord(exc.object[exc.start]):04X} on line {line})", "use --encoding utf-8") from None
    if bom and not data.startswith(b"\xef\xbb\xbf"):
        data = "\ufeff".encode(encoding) + data if encoding.lower().startswith("utf") else data
    return data
