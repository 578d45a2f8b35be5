"""Shared pieces of the dedupe benchmarks: pairwise precision/recall/F1, peak memory, child runs.

Each tool runs in its own child process (``python bench/<script> --child TOOL DATASET``) so that its
wall time and peak memory (``ru_maxrss`` of that process) are its own; the parent prints the table.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from typing import Any


def pairwise_scores(con: Any, predicted: str, truth: str) -> dict[str, float]:
    """``predicted(record_id, cluster_id)`` vs ``truth(record_id, entity)``: pairwise P, R, F1 (DuckDB)."""
    def pairs(q: str) -> int:
        return int(con.execute(f"SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM ({q})").fetchall()[0][0])

    pred = pairs(f"SELECT count(*) AS n FROM {predicted} GROUP BY cluster_id")
    true = pairs(f"SELECT count(*) AS n FROM {truth} GROUP BY entity")
    tp = pairs(f"SELECT count(*) AS n FROM {predicted} p JOIN {truth} t USING (record_id) "
               "GROUP BY p.cluster_id, t.entity")
    precision = tp / pred if pred else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"true_pairs": true, "predicted_pairs": pred, "tp": tp, "precision": round(precision, 5),
            "recall": round(recall, 5), "f1": round(f1, 5)}


def blocking_recall(con: Any, truth: str) -> float:
    """Share of the true pairs (``truth(record_id, entity)``) that blocking made candidates (last run)."""
    row = con.execute(f"""WITH t AS (SELECT p.__rid AS rid, t.entity FROM {truth} t JOIN dedupe_prep p
            ON p.__id = t.record_id),
        tp AS (SELECT a.rid AS l, b.rid AS r FROM t a JOIN t b ON a.entity = b.entity AND a.rid < b.rid)
        SELECT count(*), count(k.l) FROM tp LEFT JOIN (SELECT l, r FROM dedupe_pairs WHERE rule >= 0) k
            USING (l, r)""").fetchall()[0]
    return round(row[1] / row[0], 5) if row[0] else 1.0


def peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_child(script: str, *args: str, timeout: float = 3600) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, script, "--child", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return json.loads(lines[-1])


def print_table(rows: list[dict[str, Any]]) -> None:
    cols = ["dataset", "tool", "rows", "wall_s", "peak_mib", "precision", "recall", "f1", "error"]
    print(" | ".join(f"{c:>10}" for c in cols))
    for r in rows:
        print(" | ".join(f"{r.get(c, ''):>10}" if not isinstance(r.get(c), float) else f"{r[c]:>10.4f}"
                         for c in cols))
