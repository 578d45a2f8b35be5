"""Small hand-made inputs for the segments tests, written as real files and run through the API.

Helpers come as the ``kit`` fixture (tests are imported in importlib mode, so no shared module).
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from crmtool.segments import api
from crmtool.segments.model import SegmentsSpec
from crmtool.segments.spec import parse_segments_text
from crmtool.workspace import Workspace

AS_OF = date(2026, 11, 1)

HEAD = """
version: 1
inputs:
  customers: {id: customer_id, email: email, phone: phone, consent: consent, signup_date: signup}
  orders: {customer_id: customer_id, date: order_date, amount: amount, channel: channel}
  events: {customer_id: customer_id, type: event_type, timestamp: occurred_at, channel: channel}
"""


class Kit:
    as_of = AS_OF
    head = HEAD

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp

    def write_csv(self, name: str, header: list[str], rows: list[list[Any]], delimiter: str = ",") -> Path:
        path = self.tmp / name
        with path.open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, delimiter=delimiter, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)
        return path

    def customers(self, ids: list[str], consent: str = "yes", name: str = "customers.csv") -> Path:
        rows = [[i, f"{i.lower()}@example.com", "", consent, "01/01/2026"] for i in ids]
        return self.write_csv(name, ["customer_id", "email", "phone", "consent", "signup"], rows)

    def spec(self, body: str) -> SegmentsSpec:
        return parse_segments_text(HEAD + body, "segments.yaml", self.tmp)

    def run(self, ws: Workspace, body: str, customers: Path, orders: list[list[Any]] | None = None,
            events: list[list[Any]] | None = None, as_of: date = AS_OF, out: str = "out") -> api.SegmentResult:
        o = self.write_csv("orders.csv", ["customer_id", "order_date", "amount", "channel"], orders, ";") \
            if orders is not None else None
        e = self.write_csv("events.csv", ["customer_id", "event_type", "occurred_at", "channel"], events) \
            if events is not None else None
        return api.segment(ws, customers, self.spec(body), out_dir=self.tmp / out, orders=o, events=e, as_of=as_of)

    @staticmethod
    def features(ws: Workspace, *cols: str) -> dict[str, tuple[Any, ...]]:
        """customer_id -> the asked feature values, from the last run's seg_features."""
        sel = ", ".join(f'"{c}"' for c in cols)
        rows = ws.con.execute(f"SELECT customer_id, {sel} FROM seg_features").fetchall()
        return {r[0]: tuple(r[1:]) for r in rows}

    def send_list(self, name: str, out: str = "out") -> list[str]:
        with (self.tmp / out / "segments" / f"{name}.csv").open(encoding="utf-8") as fh:
            return [row["customer_id"] for row in csv.DictReader(fh)]

    def rows(self, relpath: str) -> list[dict[str, str]]:
        with (self.tmp / relpath).open(encoding="utf-8") as fh:
            return list(csv.DictReader(fh))


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    return Kit(tmp_path)
