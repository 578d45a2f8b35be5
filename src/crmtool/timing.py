"""A lap timer for the phases of a run (engine, dedupe): wall seconds per named step."""

from __future__ import annotations

import time


class Laps:
    """``laps.lap("load")`` records the seconds since the previous lap under ``"load"``."""

    def __init__(self, digits: int = 4) -> None:
        self.digits = digits
        self.timings: dict[str, float] = {}
        self._mark = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._mark, self.digits)
        self._mark = now
