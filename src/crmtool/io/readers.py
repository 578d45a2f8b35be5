"""Read CSV, Parquet or xlsx exports into a DuckDB table, never dropping a row silently.

CSV: the encoding (UTF-8, UTF-8 with BOM, cp1252, Latin-1) and the delimiter (``,`` ``;`` tab
``|``) are detected and reported; non-UTF-8 files are transcoded to a private temporary copy
(the input is never touched). Rows DuckDB cannot parse (ragged, broken quoting) are kept in
:attr:`LoadResult.parse_rejects` with their line number and reason.

Every loaded table gets a leading ``_row`` column: the 1-based ordinal of the row among the rows
that were read, in file order. Outputs are sorted by it, which makes reruns byte-identical.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.errors import InputError, UsageError
from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb

DELIMITERS = [",", ";", "\t", "|"]
SNIFF_BYTES = 256 * 1024
ROW_COLUMN = "_row"


@dataclass(frozen=True)
class ReadOptions:
    """What the user says about an input when detection gets it wrong.

    ``delimiter`` and ``encoding`` replace the detected ones for CSV; ``sheet`` names the xlsx
    sheet to read (by name, or its 1-based number); the first sheet otherwise.
    """

    delimiter: str | None = None
    encoding: str | None = None
    sheet: str | None = None

    def __post_init__(self) -> None:
        if self.delimiter is not None:
            named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
            object.__setattr__(self, "delimiter", named.get(self.delimiter.lower(), self.delimiter))
            if len(self.delimiter or "") != 1:
                raise UsageError(f"--input-delimiter {self.delimiter!r}: give one character "
                                 f"(or tab, comma, semicolon, pipe)")
        if self.encoding is not None:
            import codecs

            try:
                object.__setattr__(self, "encoding", codecs.lookup(self.encoding).name)
            except LookupError:
                raise UsageError(f"--input-encoding {self.encoding!r} is not an encoding",
                                 "try utf-8, utf-8-sig, cp1252 or latin-1") from None


@dataclass(frozen=True)
class ParseReject:
    """A physical CSV line that could not be read as a row."""

    line: int
    reason: str
    raw: str


@dataclass
class LoadResult:
    """What was loaded, how it was read, and what could not be."""

    table: str
    path: Path
    format: str  # csv | parquet | xlsx
    rows: int
    columns: list[str]
    encoding: str | None = None
    delimiter: str | None = None
    parse_rejects: list[ParseReject] = field(default_factory=list)
    renamed_columns: dict[str, str] = field(default_factory=dict)
    erased_dropped: int = 0  # rows of people erased earlier, removed right after loading
    utf8_lines: int = 0  # lines with UTF-8 sequences in a file read as cp1252/Latin-1 (mixed encodings)

    def describe(self) -> str:
        """One line for people: what was detected."""
        if self.format != "csv":
            return f"{self.path.name}: {self.format}, {self.rows} rows, {len(self.columns)} columns"
        delim = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(self.delimiter or "", self.delimiter)
        extra = f", {len(self.parse_rejects)} unparseable rows" if self.parse_rejects else ""
        if self.erased_dropped:
            extra += f", {self.erased_dropped} rows of erased people dropped"
        if self.utf8_lines:
            extra += (f", mixed encodings: {self.utf8_lines} lines hold UTF-8 text read as {self.encoding} "
                      f"(the mojibake rule repairs it)")
        return (f"{self.path.name}: csv, encoding {self.encoding}, delimiter {delim}, "
                f"{self.rows} rows, {len(self.columns)} columns{extra}")


def file_format(path: Path) -> str:
    """csv, parquet or xlsx, from the magic bytes first and the suffix second."""
    with path.open("rb") as fh:
        head = fh.read(4)
    if head == b"PAR1":
        return "parquet"
    if head[:2] == b"PK" and path.suffix.lower() in (".xlsx", ".xlsm"):
        return "xlsx"
    if path.suffix.lower() in (".parquet", ".pq"):
        raise InputError(f"{path}: named .parquet but is not a Parquet file")
    return "csv"


#: the bytes where cp1252 and Latin-1 differ (C1 controls in Latin-1), and those cp1252 leaves undefined
_C1 = bytes(range(0x80, 0xA0))
_CP1252_UNDEFINED = b"\x81\x8d\x8f\x90\x9d"
_NOT_C1 = bytes(b for b in range(256) if b not in _C1)


def detect_encoding(data: bytes) -> tuple[str, set[int]]:
    """utf-8-sig, utf-16, utf-8, cp1252 or latin-1 (the first that decodes the bytes), and the
    C1 bytes (0x80-0x9F) in the data when it is not UTF-8."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig", set()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16", set()
    try:
        data.decode("utf-8")
        return "utf-8", set()
    except UnicodeDecodeError:
        pass
    # every byte decodes in cp1252 except five; without C1 bytes cp1252 and Latin-1 read the same
    c1 = set(data.translate(None, _NOT_C1))
    return ("latin-1" if c1 & set(_CP1252_UNDEFINED) else "cp1252"), c1


def _file_encoding(path: Path, head: bytes) -> tuple[str, set[int]]:
    """:func:`detect_encoding` of a whole file, read piece by piece (never held in memory)."""
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return detect_encoding(head[:3])
    if _first_undecodable(path, "utf-8") is None:
        return "utf-8", set()
    c1: set[int] = set()
    for _at, window in _windows(path):
        c1 |= set(window.translate(None, _NOT_C1))
    return ("latin-1" if c1 & set(_CP1252_UNDEFINED) else "cp1252"), c1


_UTF8_SEQUENCE = rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"


def _first_undecodable(path: Path, encoding: str) -> int | None:
    """The offset of the first byte where ``path`` stops decoding as ``encoding`` (None: it all
    decodes), read piece by piece."""
    import codecs

    decoder = codecs.getincrementaldecoder(encoding)()
    at = 0
    with path.open("rb") as fh:
        for piece in itertools.chain(iter(lambda: fh.read(SCAN_BYTES), b""), [b""]):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(piece, final=not piece)
            except UnicodeDecodeError as exc:
                return at - pending + exc.start
            at += len(piece)
    return None


def _byte_and_line(path: Path, offset: int) -> tuple[int, int]:
    """The byte at ``offset`` and its 1-based line (for messages about a file that is not what it claims)."""
    with path.open("rb") as fh:
        before = fh.read(offset)
        return fh.read(1)[0], before.count(b"\n") + 1


def _encoding_problem(path: Path, head: bytes) -> InputError | None:
    """Encodings that cannot be read as they claim: one clear line each (exit 2), never a traceback.
    ``head`` is the file's first :data:`SNIFF_BYTES` bytes; the rest is read only when needed."""
    if head.startswith(b"\xef\xbb\xbf"):
        bad = _first_undecodable(path, "utf-8-sig")
        if bad is not None:
            byte, line = _byte_and_line(path, bad)
            return InputError(f"{path}: starts with a UTF-8 byte-order mark but is not UTF-8 after it "
                              f"(byte 0x{byte:02X} on line {line})",
                              "save the file again as UTF-8, or without the mark as cp1252/Latin-1")
        return None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    sample = head[:SNIFF_BYTES]
    even, odd = sample[0::2], sample[1::2]
    if len(sample) >= 4 and max(even.count(0) / max(len(even), 1), odd.count(0) / max(len(odd), 1)) > 0.3:
        return InputError(f"{path}: looks like UTF-16 text without a byte-order mark",
                          "save it as UTF-8 (Excel: 'CSV UTF-8'), or as UTF-16 with its byte-order mark")
    return None


#: the CSV is scanned in pieces of this size (encoding, C1 bytes, mixed lines): never held whole
SCAN_BYTES = 1 << 24
#: data up to this size is scanned for UTF-8 lines with the byte pattern, not numpy
PATTERN_SCAN_BYTES = 1 << 20


def _windows(data: bytes | Path, chunk: int = SCAN_BYTES) -> Iterator[tuple[int, bytes]]:
    """``(offset, piece)``: pieces of ``chunk`` bytes each followed by up to 4 bytes of the next
    (a sequence cut by the border is still seen whole); ``data`` is bytes or a file, read piece
    by piece so that a large export is never held in memory at once."""
    if isinstance(data, bytes):
        for at in range(0, len(data), chunk):
            yield at, data[at:at + chunk + 4]
        return
    if chunk < 4:  # pieces smaller than a sequence (tests): the file is tiny
        yield from _windows(data.read_bytes(), chunk)
        return
    with data.open("rb") as fh:
        at, piece = 0, fh.read(chunk)
        while piece:
            following = fh.read(chunk)
            yield at, piece + following[:4]
            at, piece = at + len(piece), following


def _utf8_lines(data: bytes | Path, chunk: int = SCAN_BYTES) -> int:
    """Lines holding a UTF-8 multi-byte sequence in data that as a whole is not UTF-8.

    Vectorised over pieces of bytes (a Python regex over a 150 MB export took seconds): a
    sequence starts where a lead byte is followed by enough continuation bytes, exactly the
    starts of :data:`_UTF8_SEQUENCE`'s matches, since no match can start inside another. One
    pass finds the bytes from 0xC2 up that a continuation byte follows (rare in Latin-1 text);
    only those are looked at further. Data that fits in one small piece is scanned with the
    pattern itself (no numpy to import for a small export).
    """
    size = len(data) if isinstance(data, bytes) else data.stat().st_size
    if size <= min(chunk, PATTERN_SCAN_BYTES):
        return _utf8_lines_by_pattern(data if isinstance(data, bytes) else data.read_bytes())
    import numpy as np

    lines: list[np.ndarray] = []
    newlines_before = 0
    for _at, window in _windows(data, chunk):
        a = np.frombuffer(window, dtype=np.uint8)
        own = min(chunk, len(a))  # the piece itself; the bytes after it belong to the next one
        newlines = np.flatnonzero(a[:own] == 10)
        cont = (a & 0xC0) == 0x80  # 0x80-0xBF
        lead = np.flatnonzero((a[:-1] >= 0xC2) & cont[1:])
        lead = lead[lead < own]
        if len(lead):
            b = a[lead]
            need = np.where(b <= 0xDF, 1, np.where(b <= 0xEF, 2, np.where(b <= 0xF4, 3, 0)))
            ok = need > 0
            cont = np.concatenate([cont, np.zeros(3, dtype=bool)])  # past the end: no continuation
            for k in (2, 3):
                ok &= (need < k) | cont[lead + k]
            lines.append(newlines_before + np.searchsorted(newlines, lead[ok]))
        newlines_before += len(newlines)
    return len(np.unique(np.concatenate(lines))) if lines else 0


def _utf8_lines_by_pattern(data: bytes) -> int:
    """:func:`_utf8_lines` with :data:`_UTF8_SEQUENCE` itself, for data of one small piece."""
    lines, last, newlines, at = 0, -1, 0, 0
    for match in re.finditer(_UTF8_SEQUENCE, data):  # in order: a line's matches come together
        newlines, at = newlines + data.count(b"\n", at, match.start()), match.start()
        if newlines != last:
            lines, last = lines + 1, newlines
    return lines


def _looks_binary(sample: bytes) -> bool:
    if b"\0" in sample:
        return True
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 13))
    return controls > max(8, len(sample) // 100)


def detect_delimiter(text_sample: str) -> str:
    """The candidate that splits the first lines into the same, largest number of fields."""
    lines = text_sample.splitlines()[:50]
    if len(lines) > 1 and not text_sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line of a sample may be cut
    best, best_score = ",", (-1, -1)
    for delim in DELIMITERS:
        try:
            rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delim, quotechar='"'))
        except csv.Error:
            continue
        if not rows:
            continue
        width = len(rows[0])
        if width < 2:
            continue
        consistent = sum(1 for r in rows if len(r) == width)
        score = (consistent, width)
        if score > best_score:
            best, best_score = delim, score
    return best


def _unique_columns(header: list[str]) -> tuple[list[str], dict[str, str]]:
    names: list[str] = []
    renamed: dict[str, str] = {}
    seen: set[str] = set()
    for i, raw in enumerate(header, start=1):
        name = raw.strip() or f"column_{i}"
        base, n = name, 2
        while name.lower() in seen or name.lower() == ROW_COLUMN:  # DuckDB names are case-insensitive
            name, n = f"{base}_{n}", n + 1
        if name != raw:
            renamed[raw or f"(empty header {i})"] = name
        seen.add(name.lower())
        names.append(name)
    return names, renamed



def load_file(con: duckdb.DuckDBPyConnection, path: Path, table: str, options: ReadOptions | None = None) -> LoadResult:
    """Load ``path`` into ``table`` (replaced if present) with a ``_row`` ordinal column.

    A CSV that detection cannot read sensibly (every row unparseable, or one column although the
    header holds a delimiter) is an :class:`InputError`, not an empty table: the hint names the
    ``--input-delimiter``/``--input-encoding`` overrides.
    """
    options = options or ReadOptions()
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a CSV, Parquet or xlsx file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty (0 bytes)")
    fmt = file_format(path)
    if fmt == "parquet":
        return _load_parquet(con, path, table)
    if fmt == "xlsx":
        return _load_xlsx(con, path, table, options.sheet)
    return _load_csv(con, path, table, options)


def _free_row_name(con: duckdb.DuckDBPyConnection, staging: str) -> dict[str, str]:
    """Rename typed-input columns that would collide with ``_row`` (any case), as CSV headers are."""
    names = [r[0] for r in con.execute(f'DESCRIBE "{staging}"').fetchall()]
    renamed = {old: new for old, new in zip(names, _unique_columns(names)[0], strict=True) if old != new}
    for old, new in renamed.items():
        con.execute(f'ALTER TABLE "{staging}" RENAME COLUMN {ident(old)} TO {ident(new)}')
    return renamed



def _finish(con: duckdb.DuckDBPyConnection, staging: str, table: str) -> tuple[int, list[str]]:
    con.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT rowid + 1 AS {ROW_COLUMN}, * FROM "{staging}"')
    con.execute(f'DROP TABLE "{staging}"')
    return _shape(con, table)


def _shape(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, list[str]]:
    rows = con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0]
    cols = [r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall() if r[0] != ROW_COLUMN]
    return int(rows[0]) if rows else 0, cols


def _load_parquet(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> LoadResult:
    import duckdb

    from crmtool.io.gate import readable, release

    staging = f"__staging_{table}"
    name = readable(con, path)
    try:
        con.execute(f'CREATE OR REPLACE TABLE "{staging}" AS SELECT * FROM read_parquet({sql_str(name)})')
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot read Parquet ({str(exc).splitlines()[0]})") from None
    finally:
        release(con, name)
    renamed = _free_row_name(con, staging)
    rows, cols = _finish(con, staging, table)
    if rows == 0:
        raise InputError(f"{path}: has no data rows")
    return LoadResult(table, path, "parquet", rows, cols, renamed_columns=renamed)


def _load_xlsx(con: duckdb.DuckDBPyConnection, path: Path, table: str, sheet: str | None = None) -> LoadResult:
    import polars as pl

    which: dict[str, object] = {}
    if sheet is not None:
        which = {"sheet_id": int(sheet)} if sheet.isdigit() else {"sheet_name": sheet}
    try:
        frame = pl.read_excel(path, infer_schema_length=0, **which)  # type: ignore[call-overload]
    except ImportError:
        raise InputError(f"{path}: reading xlsx needs the optional extra", "pip install 'crmtool[xlsx]'") from None
    except Exception as exc:  # the xlsx engines raise many types
        what = f"sheet {sheet!r}" if sheet is not None else "xlsx"
        raise InputError(f"{path}: cannot read {what} ({str(exc).splitlines()[0] if str(exc) else exc})",
                         "--sheet takes a sheet name or its number (1 is the first)") from None
    staging = f"__staging_{table}"
    con.register("__xlsx_frame", frame.to_arrow())
    con.execute(f'CREATE OR REPLACE TABLE "{staging}" AS SELECT * FROM __xlsx_frame')
    con.unregister("__xlsx_frame")
    renamed = _free_row_name(con, staging)
    rows, cols = _finish(con, staging, table)
    if rows == 0:
        raise InputError(f"{path}: has no data rows")
    return LoadResult(table, path, "xlsx", rows, cols, renamed_columns=renamed)


def _given_encoding(path: Path, head: bytes, encoding: str) -> tuple[str, set[int]]:
    """``--input-encoding`` as the reader uses it: the file must decode with it."""
    bad = _first_undecodable(path, encoding)
    if bad is not None:
        byte, line = _byte_and_line(path, bad)
        raise InputError(f"{path}: is not {encoding} (byte 0x{byte:02X} on line {line})",
                         "leave --input-encoding out to detect it, or try cp1252 or latin-1") from None
    name = {"utf_8": "utf-8", "utf_8_sig": "utf-8-sig", "iso8859-1": "latin-1", "latin_1": "latin-1"}.get(
        encoding, encoding)
    if name == "utf-8" and head.startswith(b"\xef\xbb\xbf"):
        name = "utf-8-sig"
    # a forced single-byte encoding is always transcoded (DuckDB reads UTF-8 and Latin-1 only)
    return name, ({0x80} if name not in ("utf-8", "utf-8-sig", "latin-1") else set())


def _too_few_columns(path: Path, header: str, delimiter: str, columns: int) -> None:
    """One column although the header holds another delimiter: detection went wrong."""
    if columns > 1:
        return
    for other in DELIMITERS:
        if other != delimiter and header.count(other) >= 2:
            name = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}[other]
            raise InputError(f"{path}: read as one column, but its header holds {header.count(other)} {name}s",
                             f"pass --input-delimiter {name!r} (and --input-encoding if the text looks wrong)")


def _load_csv(con: duckdb.DuckDBPyConnection, path: Path, table: str, options: ReadOptions | None = None) -> LoadResult:
    import duckdb

    options = options or ReadOptions()
    # the export is read in pieces (never whole: a 10M-row file is 1.4 GB): its head here, and
    # one pass each for the encoding, the C1 bytes and the mixed-encoding count
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    problem = _encoding_problem(path, head)
    if problem is not None:
        raise problem
    utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))  # Excel's "Unicode text": NUL bytes, not binary
    if not utf16 and options.encoding is None and _looks_binary(head):
        raise InputError(f"{path}: looks like binary data, not a CSV export",
                         "export the table as CSV (UTF-8 or Latin-1) or Parquet")
    if options.encoding is not None:
        encoding, c1 = _given_encoding(path, head, options.encoding)
    else:
        encoding, c1 = _file_encoding(path, head)
    text = head.decode(encoding, errors="ignore")  # a sample may cut a character
    if not text.strip() and not path.read_bytes().decode(encoding, errors="replace").strip():
        raise InputError(f"{path}: file is empty (no header, no rows)")
    delimiter = options.delimiter or detect_delimiter(text)
    # newline="": a file with CR-only line ends (old Mac exports) must not stop the csv module
    sample = io.StringIO(text, newline="")
    first_record = next(csv.reader(sample, delimiter=delimiter, quotechar='"'), [])
    columns, renamed = _unique_columns(first_record)
    if options.delimiter is None:
        _too_few_columns(path, text.lstrip("\ufeff").splitlines()[0] if text.strip() else "", delimiter, len(columns))
    source = path
    tmp_dir: tempfile.TemporaryDirectory[str] | None = None
    # DuckDB reads UTF-8 itself, and cp1252 without C1 bytes (0x80-0x9F: the euro sign, curly
    # quotes), which is then the same as Latin-1; other files are rewritten as UTF-8 first
    read_as = {"utf-8": "utf-8", "cp1252": "latin-1", "latin-1": "latin-1"}.get(encoding) if not c1 else None
    if read_as is None:
        tmp_dir = tempfile.TemporaryDirectory(prefix="crmtool-")
        source = Path(tmp_dir.name) / "utf8.csv"
        try:
            _transcode(path, source, encoding)
        except InputError:
            tmp_dir.cleanup()
            raise
        read_as = "utf-8"
    from crmtool.io.gate import readable, release

    col_spec = "{" + ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c in columns) + "}"
    name = ""
    try:
        name = readable(con, source)  # the workspace session reads files only through its sandbox
        con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
        # rows are numbered as they are read: DuckDB keeps the source order for an empty OVER ()
        # (insertion order is preserved), which saves copying the whole table to number it
        con.execute(
            f'CREATE OR REPLACE TABLE "{table}" AS SELECT row_number() OVER () AS {ROW_COLUMN}, * '
            f"FROM read_csv({sql_str(name)}, "
            f"auto_detect=false, header=true, delim={sql_str(delimiter)}, quote='\"', escape='\"', "
            f"columns={col_spec}, encoding='{read_as}', store_rejects=true, strict_mode=true, "
            f"max_line_size=10000000)"
        )
        rejects = con.execute(
            "SELECT line, error_type::VARCHAR, error_message, csv_line, line_byte_position "
            "FROM reject_errors ORDER BY line, column_idx"
        ).fetchall()
        con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot parse as CSV ({str(exc).splitlines()[0]})") from None
    finally:
        if name:
            release(con, name)
        if tmp_dir is not None:
            tmp_dir.cleanup()
    parse_rejects: list[ParseReject] = []
    seen_lines: set[int] = set()
    # DuckDB's ``line`` counts records, not physical lines: a quoted field with a newline earlier in
    # the file shifts it. The physical line is counted from the byte offset of the record's start.
    # byte offsets refer to the file DuckDB read: the export itself, or its UTF-8 rewrite
    source_bytes = b""
    if rejects:  # rare: the file is read whole again only to place the rejected lines
        source_bytes = path.read_bytes() if source == path else path.read_bytes().decode(encoding).encode("utf-8")
    for record, kind, message, raw, line_start in rejects:
        if int(record) in seen_lines:
            continue
        seen_lines.add(int(record))
        line = _physical_line(source_bytes, int(line_start)) if line_start else int(record)
        parse_rejects.append(ParseReject(line, f"{kind.lower()}: {message}", (raw or "").strip("\r\n")))
    rows, cols = _shape(con, table)
    if rows == 0 and not parse_rejects:
        raise InputError(f"{path}: has a header but no data rows")
    if rows == 0:
        con.execute(f'DROP TABLE "{table}"')
        name = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(delimiter, repr(delimiter))
        raise InputError(f"{path}: none of its {len(parse_rejects)} rows could be read with {name} as delimiter "
                         f"and {encoding} encoding (first problem on line {parse_rejects[0].line})",
                         "check the file, or pass --input-delimiter and --input-encoding")
    mixed = _utf8_lines(path) if encoding in ("cp1252", "latin-1") else 0
    return LoadResult(table, path, "csv", rows, cols, encoding, delimiter, parse_rejects, renamed, utf8_lines=mixed)


def _transcode(path: Path, target: Path, encoding: str) -> None:
    """Rewrite ``path`` as UTF-8 into ``target``, piece by piece (a BOM is dropped)."""
    import codecs

    decoder = codecs.getincrementaldecoder(encoding)()
    done = 0  # bytes decoded before the current piece, for the error's position
    with path.open("rb") as fin, target.open("w", encoding="utf-8", newline="") as fout:
        try:
            for piece in iter(lambda: fin.read(SCAN_BYTES), b""):
                fout.write(decoder.decode(piece))
                done += len(piece)
            fout.write(decoder.decode(b"", final=True))
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not valid {encoding} near byte {done + exc.start} ({exc.reason})",
                             "the file may be cut short or mix encodings; export it again as UTF-8") from None


def _physical_line(source: bytes, line_start: int) -> int:
    """1-based line of the record starting near ``line_start`` (DuckDB's ``line_byte_position``).

    DuckDB 2 gives a 1-based offset after LF line ends and a 0-based one after CRLF, so the
    record start is whichever of the two candidates follows a newline.
    """
    start = line_start
    for candidate in (line_start - 1, line_start):
        if candidate <= 0 or source[candidate - 1:candidate] in (b"\n", b"\r"):
            start = max(candidate, 0)
            break
    # line breaks before the record: LF, CRLF (once) or a bare CR
    return source.count(b"\n", 0, start) + source.count(b"\r", 0, start) - source.count(b"\r\n", 0, start) + 1


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, streamed."""
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_readable(path: Path) -> None:
    """Raise :class:`InputError` unless ``path`` is an existing readable file."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: not readable (permissions)")
