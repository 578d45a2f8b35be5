"""How far the SQL crmtool runs is from Spark SQL: a measured inventory for the backend work.

    python bench/spark_inventory.py [--top 15]

Runs the main jobs on ``examples/`` (clean with every rule file, segment, dedupe) through the
public API in a workspace whose DuckDB session logs every statement (DuckDB's ``QueryLog``), then
tries to transpile each distinct statement to Spark SQL with sqlglot (unsupported constructs
raise). Prints, per job and overall: statements run, distinct statements, statement types, how
many transpile without an error, the functions sqlglot passes through verbatim (unknown to it,
so most likely DuckDB-only or crmtool macros) and why the rest fail. A statement that
transpiles is not proven to run on Spark: sqlglot is permissive. Not part of pytest.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from collections import Counter
from pathlib import Path

import sqlglot
from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

import crmtool
from crmtool.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


class LoggedWorkspace(Workspace):
    """A workspace whose session logs its statements before the configuration is locked."""

    def _wall(self) -> None:
        assert self._con is not None
        self._con.execute("CALL enable_logging('QueryLog')")
        super()._wall()

    def statements(self) -> list[str]:
        rows = self.con.execute("SELECT message FROM duckdb_logs WHERE type = 'QueryLog' ORDER BY timestamp").fetchall()
        return [r[0] for r in rows]


def _shape(sql: str) -> str:
    """The statement with literals and temp-name suffixes blanked, so repeats count once."""
    sql = re.sub(r"'(?:[^']|'')*'", "'?'", sql)
    sql = re.sub(r"\b\d+(\.\d+)?\b", "0", sql)
    sql = re.sub(r"_[0-9a-f]{6,}\b", "_x", sql)
    return " ".join(sql.split())


def _kind(sql: str) -> str:
    words = sql.lstrip("( \n").split(None, 3)
    head = " ".join(words[:2]).upper() if words else ""
    for prefix in ("CREATE OR", "CREATE TEMP", "CREATE TABLE", "CREATE MACRO", "CREATE VIEW", "CREATE INDEX"):
        if head.startswith(prefix):
            return " ".join(w.upper() for w in words[:3]) if prefix == "CREATE OR" else head
    return words[0].upper() if words else "?"


def _spark_problem(sql: str) -> str | None:
    try:
        sqlglot.transpile(sql, read="duckdb", write="spark", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        return "unsupported: " + str(exc).splitlines()[0][:90]
    except ParseError as exc:
        return "parse: " + str(exc).splitlines()[0][:90]
    except Exception as exc:
        return f"{type(exc).__name__}: " + str(exc).splitlines()[0][:80]
    return None


def _unknown_functions(sql: str) -> set[str]:
    """Functions sqlglot does not know in DuckDB's dialect: passed through verbatim to Spark, where
    most do not exist (DuckDB-only functions, crmtool's own macros)."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except Exception:
        return set()
    return {node.name.lower() for node in tree.find_all(sqlglot.exp.Anonymous)}


def _jobs(ws: Workspace, tmp: Path) -> dict[str, list[str]]:
    seen = 0
    out: dict[str, list[str]] = {}

    def take(name: str) -> None:
        nonlocal seen
        stmts = ws.statements()  # type: ignore[attr-defined]
        out[name] = stmts[seen:]
        seen = len(stmts) + 1  # the log query itself is logged too

    rules = sorted(p for p in (ROOT / "rules").glob("*.yaml"))
    result = crmtool.clean(ws, EXAMPLES / "clientes.csv", rules, tmp / "clean")
    take("clean")
    crmtool.segment(ws, result.outputs["clean"], ROOT / "segments.yaml", out_dir=tmp / "seg",
                    orders=EXAMPLES / "pedidos.csv", events=EXAMPLES / "eventos.csv")
    take("segment")
    crmtool.dedupe_file(ws, result.outputs["clean"], [ROOT / "rules"], tmp / "dedupe")
    take("dedupe")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        ws = LoggedWorkspace(tmp / "inventory.duckdb")
        ws.open()
        try:
            jobs = _jobs(ws, tmp)
        finally:
            ws.close()
    reasons: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    bad_kinds: Counter[str] = Counter()
    print(f"{'job':8} {'run':>6} {'distinct':>8} {'to Spark':>9}")
    all_shapes: dict[str, str] = {}
    for job, stmts in jobs.items():
        shapes = {_shape(s): s for s in stmts}
        ok = 0
        for shape, sql in shapes.items():
            problem = _spark_problem(sql)
            all_shapes.setdefault(shape, sql)
            ok += problem is None
        print(f"{job:8} {len(stmts):>6} {len(shapes):>8} {ok:>9}")
    ok = 0
    for sql in all_shapes.values():
        kind = _kind(sql)
        kinds[kind] += 1
        problem = _spark_problem(sql)
        if problem is None:
            ok += 1
        else:
            reasons[problem] += 1
            bad_kinds[kind] += 1
    print(f"{'all':8} {'':>6} {len(all_shapes):>8} {ok:>9}")
    print("\nstatement types (distinct statements; in brackets those that do not transpile):")
    for kind, n in kinds.most_common():
        print(f"  {n:5}  ({bad_kinds[kind]:4})  {kind}")
    unknown: Counter[str] = Counter()
    for sql in all_shapes.values():
        unknown.update(_unknown_functions(sql))
    print(f"\nfunctions passed through verbatim (statements using each; top {args.top} of {len(unknown)}):")
    for name, n in unknown.most_common(args.top):
        print(f"  {n:5}  {name}")
    print(f"\ncommonest reasons a statement does not transpile (top {args.top}):")
    for reason, n in reasons.most_common(args.top):
        print(f"  {n:5}  {reason}")


if __name__ == "__main__":
    main()
