"""Read one side of a diff: DuckDB reads the export itself when the file is plain, else the full loader.

``diff`` needs each export as a relation of text (CSV) or typed (Parquet) columns in file order,
and nothing else: no fixes, no transcoded copy, no row-numbering pass. For the common CSV export
(UTF-8, or cp1252/Latin-1 without the bytes where the two differ) DuckDB's parallel ``read_csv``
fills a table in one pass, and a row's number is its ``rowid`` + 1 (DuckDB keeps the insertion
order). A Parquet export is not copied at all: the side is a view over ``read_parquet`` with the
file's own row number (``file_row_number``, 0-based, as ``_row``), which DuckDB scans about as
fast as a table in memory, and a filter on that number reaches into the scan, so the few rows the
comparison needs again are read without decoding the rest. Encoding and delimiter are detected on a sample, as
:func:`crmtool.io.readers.load_file` does; whatever the sample cannot settle is decided by the
whole file or by the full loader:

- a sample that is UTF-8 is read as UTF-8, and DuckDB stops on the first byte that is not, in
  which case the full loader reads the file (it then detects cp1252/Latin-1 on all of it);
- a sample that is not UTF-8 is read as Latin-1 only when the whole file holds none of the bytes
  0x80-0x9F (where cp1252 and Latin-1 differ); otherwise the full loader transcodes it;
- a row DuckDB cannot parse (ragged, broken quotes), a header the loader would rename (blank,
  repeated, ``_row``), a header of one column, control bytes, UTF-16, xlsx, an empty file or
  one without rows: the full loader, so its counts of unparseable rows and its errors are the
  ones ``clean`` gives.

Both paths give the same table for the same file; the tests compare them.
"""

from __future__ import annotations

import codecs
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from crmtool.sqltext import ident, sql_str

if TYPE_CHECKING:
    import duckdb

#: as much of the file as the full loader samples for its encoding and delimiter
SAMPLE_BYTES = 256 * 1024
_C1 = bytes(range(0x80, 0xA0))
_NOT_C1 = bytes(b for b in range(256) if b not in _C1)
_CONTROLS = bytes(b for b in range(32) if b not in (9, 10, 13))


@dataclass(frozen=True)
class Side:
    """One export as read into ``table`` (a table, or a view over a Parquet file): how, how many
    rows, and how a row's number is found."""

    table: str
    format: str  # csv | parquet | xlsx
    rows: int
    unparseable_rows: int
    #: the bare column that numbers the rows: ``rowid`` (a CSV read by DuckDB), ``_row`` (the full
    #: loader's, 1-based, or a Parquet view's ``file_row_number``, 0-based)
    row_column: str
    row_base: int  # added to :attr:`row_column` to give the 1-based row number in file order
    fast: bool  # read by DuckDB directly (False: by the full loader)
    #: a view's file in the workspace's sandbox (see :func:`discard_side`), None for a table
    linked: str | None = None

    @property
    def hidden(self) -> str | None:
        """The row column when it is a column of :attr:`table` (not an export column), else None."""
        return None if self.row_column == "rowid" else self.row_column

    def row_sql(self, alias: str = "") -> str:
        """The 1-based row number of a row of :attr:`table` (in file order) as SQL."""
        column = f"{alias}.{self.row_column}" if alias else self.row_column
        return f"({column} + {self.row_base})" if self.row_base else column


def discard_side(con: duckdb.DuckDBPyConnection, table: str, side: Side | None = None) -> None:
    """Drop ``table`` whether it is a table or a view, and release a view's file from the sandbox."""
    import duckdb

    from crmtool.io.gate import release

    try:
        con.execute(f"DROP TABLE IF EXISTS {ident(table)}")
    except duckdb.CatalogException:  # a view: DROP TABLE refuses it
        con.execute(f"DROP VIEW IF EXISTS {ident(table)}")
    if side is not None and side.linked is not None:
        release(con, side.linked)


def read_side(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> Side:
    """Read ``path`` into ``table`` (replaced), directly when the file allows, else with the loader."""
    from crmtool.io.readers import file_format, load_file

    fmt = file_format(path) if path.is_file() and path.stat().st_size else "other"
    discard_side(con, table)
    fast = None
    if fmt == "csv":
        fast = _read_csv(con, path, table)
    elif fmt == "parquet":
        fast = _read_parquet(con, path, table)
    if fast is not None:
        return fast
    loaded = load_file(con, path, table)
    return Side(table, loaded.format, loaded.rows, len(loaded.parse_rejects), "_row", 0, False)


def _plain_names(names: list[str]) -> bool:
    """Header names the loader keeps as they are (so both paths name the columns alike)."""
    seen: set[str] = set()
    for name in names:
        folded = name.lower()
        if not name or name != name.strip() or folded in seen or folded == "_row":
            return False
        seen.add(folded)
    return bool(names)


def _csv_dialect(path: Path) -> tuple[str, str, list[str]] | None:
    """(DuckDB encoding, delimiter, header) from the sample, or None when the full loader must decide."""
    from crmtool.io.readers import detect_delimiter

    with path.open("rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    if sample.translate(None, _CONTROLS) != sample:
        return None  # NUL or other control bytes (UTF-16, binary data): the loader says what it is
    bom = sample.startswith(b"\xef\xbb\xbf")
    try:  # an incremental decoder accepts a character cut at the end of the sample
        text = codecs.getincrementaldecoder("utf-8-sig" if bom else "utf-8")().decode(sample, final=False)
        encoding = "utf-8"
    except UnicodeDecodeError:
        if bom or _has_c1(path):
            return None  # a broken UTF-8 file, or cp1252 text the loader transcodes
        text, encoding = sample.decode("latin-1"), "latin-1"
    if not text.strip():
        return None
    import csv

    delimiter = detect_delimiter(text)
    header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"'), [])
    return (encoding, delimiter, header) if len(header) > 1 and _plain_names(header) else None


def _has_c1(path: Path) -> bool:
    """Whether the file holds a byte 0x80-0x9F anywhere (read in blocks; C speed per block)."""
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            if len(block.translate(None, _NOT_C1)):
                return True
    return False


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> Side | None:
    import duckdb

    from crmtool.io.gate import readable, release

    dialect = _csv_dialect(path)
    if dialect is None:
        return None
    encoding, delimiter, header = dialect
    columns = "{" + ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c in header) + "}"
    name = readable(con, path)
    try:
        # strict: the first row DuckDB cannot parse stops the read, and the loader takes over
        con.execute(f"CREATE OR REPLACE TABLE {ident(table)} AS SELECT * FROM read_csv({sql_str(name)}, "
                    f"auto_detect=false, header=true, delim={sql_str(delimiter)}, quote='\"', escape='\"', "
                    f"columns={columns}, encoding='{encoding}', strict_mode=true, max_line_size=10000000)")
    except duckdb.Error:
        con.execute(f"DROP TABLE IF EXISTS {ident(table)}")
        return None
    finally:
        release(con, name)
    return _side(con, table, "csv")


def _read_parquet(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> Side | None:
    """``table`` as a view over the file (linked into the sandbox until :func:`discard_side`)."""
    import duckdb

    from crmtool.io.gate import readable, release

    name = readable(con, path)
    scan = f"read_parquet({sql_str(name)}, file_row_number = true)"
    try:
        names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_str(name)})").fetchall()]
        if not _plain_names(names) or "file_row_number" in {n.lower() for n in names}:
            release(con, name)
            return None
        con.execute(f"CREATE VIEW {ident(table)} AS SELECT * EXCLUDE (file_row_number), "
                    f"file_row_number AS _row FROM {scan}")
        rows = int(con.execute(f"SELECT count(*) FROM {scan}").fetchall()[0][0])
    except duckdb.Error:
        discard_side(con, table)
        release(con, name)
        return None  # the loader words the error
    if rows == 0:  # the loader's error names what is missing
        discard_side(con, table)
        release(con, name)
        return None
    return Side(table, "parquet", rows, 0, "_row", 1, True, name)


def _side(con: duckdb.DuckDBPyConnection, table: str, fmt: str) -> Side | None:
    rows = int(con.execute(f"SELECT count(*) FROM {ident(table)}").fetchall()[0][0])
    if rows == 0:  # the loader's error names what is missing
        con.execute(f"DROP TABLE {ident(table)}")
        return None
    return Side(table, fmt, rows, 0, "rowid", 1, True)
