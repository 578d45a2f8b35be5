"""A rewritten plain CSV loses the erased rows' lines and keeps every other byte; a file whose lines are
not its rows one to one (a quoted value over two lines, a blank line) is written back from the table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crmtool.privacy.erase import erase
from crmtool.privacy.erase.outputs import drop_lines
from crmtool.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.setenv("CRMTOOL_KEY", "test-key-0123456789abcdef0123456789")
    with Workspace(tmp_path / "crm.duckdb") as w:
        yield w


def _erase_c2(ws: Workspace, tmp_path: Path, out: Path) -> int:
    req = tmp_path / "r.csv"
    req.write_text("ref,email\nR1,BOB@x.es\n", encoding="utf-8")
    result = erase(ws, req, out_dir=tmp_path / "out", outputs=[out])
    return result.outputs.get(str(out.resolve()), 0)


def test_kept_lines_are_the_files_own_bytes(ws: Workspace, tmp_path: Path) -> None:
    # spellings DuckDB's writer would not produce (needless quotes, CRLF, a padded cell): kept as they are
    lines = [b"customer_id;email;note\r\n", b'"C1";ana@x.es;"hola"\r\n', b"C2; bob@x.es ;x\r\n",
             b'C3;eva@x.es;"a;b"\r\n', b"C4;ivo@x.es;  \r\n"]
    out = tmp_path / "also.csv"
    out.write_bytes(b"".join(lines))
    assert _erase_c2(ws, tmp_path, out) == 1
    assert out.read_bytes() == b"".join(line for line in lines if b"bob" not in line)


@pytest.mark.parametrize("body", [
    'C1,ana@x.es,"two\nlines"\nC2,bob@x.es,x\nC3,eva@x.es,y\n',  # a value spanning two lines
    "C1,ana@x.es,x\nC2,bob@x.es,x\n\nC3,eva@x.es,y\n",  # a blank line between rows
    'C1,ana@x.es,x\nC2,bob@x.es,"b\nc"\nC3,eva@x.es,y',  # the erased row spans two lines; no final newline
])
def test_files_whose_lines_are_not_their_rows_are_written_from_the_table(
    ws: Workspace, tmp_path: Path, body: str
) -> None:
    out = tmp_path / "also.csv"
    out.write_text("customer_id,email,note\n" + body, encoding="utf-8")
    assert _erase_c2(ws, tmp_path, out) == 1
    text = out.read_text(encoding="utf-8")
    assert "bob" not in text and "ana@x.es" in text and "eva@x.es" in text
    if '"two' in body:
        assert '"two\nlines"' in text  # the other rows' values, line feeds included, are kept


def test_drop_lines_changes_nothing_when_lines_and_rows_do_not_pair(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    for data, rows in ((b"a,b\n1,2\n\n3,4\n", 2), (b'a,b\n1,"x\ny"\n3,4\n', 2), (b"a,b\r\n1,2\r\n\r\n", 1)):
        path.write_bytes(data)
        assert not drop_lines(path, rows, [0])
        assert path.read_bytes() == data
    path.write_bytes(b"a,b\n1,2\n3,4")  # no final line feed
    assert drop_lines(path, 2, [1])
    assert path.read_bytes() == b"a,b\n1,2\n"
    path.write_bytes(b"a,b\n1,2\n3,4\n")
    assert drop_lines(path, 2, [0, 0])
    assert path.read_bytes() == b"a,b\n3,4\n"
