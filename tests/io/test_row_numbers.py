"""Rows are numbered in file order as they are read, however DuckDB spreads the reading over threads."""

from __future__ import annotations

from pathlib import Path

import duckdb

from crmtool.io.readers import load_file


def test_row_numbers_follow_the_file_on_a_parallel_read(tmp_path: Path) -> None:
    csv = tmp_path / "big.csv"
    con = duckdb.connect()
    con.execute("SET threads = 4")
    # ~20 MB: several buffers, read in parallel; some lines broken so the rejects leave gaps in the file
    filler = "repeat(chr(CAST(65 + i % 26 AS INTEGER)), CAST(1 + i % 40 AS INTEGER))"
    con.execute(f"COPY (SELECT i AS line, {filler} AS filler FROM range(600000) r(i)) TO '{csv}' (HEADER)")
    lines = csv.read_text(encoding="utf-8").splitlines(keepends=True)
    for n in (1000, 250000, 599990):  # a ragged line: a third field
        lines[n] = lines[n].rstrip("\n") + ",extra\n"
    csv.write_text("".join(lines), encoding="utf-8")
    loaded = load_file(con, csv, "data_big")
    assert [r.line for r in loaded.parse_rejects] == [1001, 250001, 599991]
    assert loaded.rows == 600000 - 3
    # _row is the ordinal among the rows read: the line number minus the rejected lines before it
    wrong = con.execute("""SELECT count(*) FROM data_big
                           WHERE _row <> CAST(line AS BIGINT) + 1 - (CAST(line AS BIGINT) > 999)::INT
                                 - (CAST(line AS BIGINT) > 249999)::INT - (CAST(line AS BIGINT) > 599989)::INT""")
    assert wrong.fetchall() == [(0,)]
