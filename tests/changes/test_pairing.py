"""diff's pairing against a plain Python reference, and the Parquet path against the CSV path.

The pairing is one hash aggregate with plain aggregates (rows per key, NEW rows among them, the
lowest and highest row, ``bit_xor`` of the fingerprints); these tests check its counts against a
dictionary-based reference on random small exports full of repeated, empty and padded keys, read
as Parquet (a view over the file) and as CSV (a table), and that both formats give the same files.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crmtool.changes import diff_exports
from crmtool.io.gate import sandbox_of
from crmtool.workspace import Workspace

COLUMNS = ["customer_id", "email", "city", "spent"]
Row = dict[str, str | None]


def _random_export(rnd: random.Random, n: int) -> list[Row]:
    keys = ["A", "B", "C", "D", "E", "F", " A", "B ", "", "  "]  # padded keys pair with their trim
    rows = []
    for _ in range(n):
        rows.append({"customer_id": rnd.choice(keys) if rnd.random() < 0.95 else None,
                     "email": rnd.choice(["a@x.es", "b@x.es", None]),
                     "city": rnd.choice(["Madrid", "Vigo", None]),
                     "spent": rnd.choice(["1", "2", None])})
    return rows


def _reference(old: list[Row], new: list[Row]) -> tuple[dict[str, int], dict[str, int], tuple[int, ...]]:
    """Counts, per-field counts and key problems computed the obvious way (dicts, no hashing)."""

    def key(row: Row) -> str:
        return (row["customer_id"] or "").strip()

    per_side = [Counter(key(r) for r in side if key(r)) for side in (old, new)]
    once = [{key(r): r for r in side if key(r) and per_side[i][key(r)] == 1} for i, side in enumerate((old, new))]
    repeated = set().union(*({k for k, n in c.items() if n > 1} for c in per_side))
    olds = {k: r for k, r in once[0].items() if k not in repeated}
    news = {k: r for k, r in once[1].items() if k not in repeated}
    changed = {k for k in olds.keys() & news.keys() if any(olds[k][c] != news[k][c] for c in COLUMNS[1:])}
    counts = {"added": len(news.keys() - olds.keys()), "removed": len(olds.keys() - news.keys()),
              "changed": len(changed), "unchanged": len(olds.keys() & news.keys()) - len(changed)}
    by_field = {c: sum(olds[k][c] != news[k][c] for k in changed) for c in COLUMNS[1:]}
    problems = []
    for side, counter in zip((old, new), per_side, strict=True):
        problems += [sum(1 for r in side if not key(r)), sum(1 for n in counter.values() if n > 1),
                     sum(n for n in counter.values() if n > 1)]
    return counts, by_field, tuple(problems)


def _parquet(path: Path, rows: list[Row]) -> Path:
    pq.write_table(pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in COLUMNS}), path)
    return path


def _csv(path: Path, rows: list[Row]) -> Path:
    # an empty field is read as NULL, so the reference sees None where the CSV has nothing
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows([[r[c] or "" for c in COLUMNS] for r in rows])
    return path


def _as_csv_reads(rows: list[Row]) -> list[Row]:
    return [{c: (v or None) for c, v in r.items()} for r in rows]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_pairing_matches_a_python_reference(ws: Workspace, tmp_path: Path, fmt: str) -> None:
    rnd = random.Random(13)
    for case in range(25):
        old, new = _random_export(rnd, rnd.randint(1, 14)), _random_export(rnd, rnd.randint(1, 14))
        if fmt == "csv":
            old, new = _as_csv_reads(old), _as_csv_reads(new)
            paths = _csv(tmp_path / f"o{case}.csv", old), _csv(tmp_path / f"n{case}.csv", new)
        else:
            paths = _parquet(tmp_path / f"o{case}.parquet", old), _parquet(tmp_path / f"n{case}.parquet", new)
        result = diff_exports(ws, *paths, key="customer_id")
        counts, by_field, problems = _reference(old, new)
        got = (result.old.keys.empty, result.old.keys.duplicate_keys, result.old.keys.duplicate_rows,
               result.new.keys.empty, result.new.keys.duplicate_keys, result.new.keys.duplicate_rows)
        assert (result.counts, result.changed_by_field, got) == (counts, by_field, problems), (case, old, new)


def test_parquet_and_csv_exports_give_the_same_files(ws: Workspace, tmp_path: Path) -> None:
    rnd = random.Random(7)
    old, new = _as_csv_reads(_random_export(rnd, 40)), _as_csv_reads(_random_export(rnd, 40))
    outs = {}
    for fmt, write in (("csv", _csv), ("parquet", _parquet)):
        outs[fmt] = tmp_path / f"out-{fmt}"
        result = diff_exports(ws, write(tmp_path / f"old.{fmt}", old), write(tmp_path / f"new.{fmt}", new),
                              key="customer_id", out_dir=outs[fmt], show_values=True)
        assert (result.old.format, result.new.format) == (fmt, fmt)
    names = sorted(p.name for p in outs["csv"].iterdir() if p.name != "summary.json")
    assert names == ["added.csv", "changes.csv", "key_issues.csv", "removed.csv"]
    for name in names:
        assert (outs["csv"] / name).read_bytes() == (outs["parquet"] / name).read_bytes(), name


def test_a_diff_leaves_no_export_behind(ws: Workspace, tmp_path: Path) -> None:
    rnd = random.Random(3)
    old, new = _parquet(tmp_path / "o.parquet", _random_export(rnd, 9)), _csv(tmp_path / "n.csv",
                                                                               _random_export(rnd, 9))
    diff_exports(ws, old, new, key="customer_id", out_dir=tmp_path / "out")
    left = ws.con.execute("SELECT table_name FROM information_schema.tables "
                          "WHERE table_catalog = 'crm_diff'").fetchall()
    assert left == []
    box = sandbox_of(ws.con)
    assert box is not None and not list(box.glob("in-*"))  # the Parquet view's link is released
