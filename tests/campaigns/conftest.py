"""Segment runs written straight into the workspace history, as ``crmtool segment`` records them."""

from __future__ import annotations

from datetime import date

from crmtool.segments import membership
from crmtool.workspace import Workspace


def record_segment_run(ws: Workspace, run_id: str, segment: str, ids: range | list[str], *,
                       status: dict[str, tuple[str, str | None]] | None = None, day: int = 1) -> None:
    """Members ``C<i>`` of ``segment`` with status 'send' unless ``status`` says (status, holdout)."""
    membership.ensure_history(ws.con)
    ws.con.execute("INSERT INTO segments_runs VALUES (?, ?, ?, 'segments.yaml', ?)",
                   [run_id, date(2026, 11, day), f"2026-11-{day:02d} 10:00:00", len(ids)])
    names = [i if isinstance(i, str) else f"C{i:07d}" for i in ids]
    status = status or {}
    ws.con.executemany("INSERT INTO segments_membership VALUES (?, ?, ?, ?, ?)",
                       [[run_id, segment, n, *status.get(n, ("send", None))] for n in names])
