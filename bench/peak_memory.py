"""Where a command's memory peaks: run crmtool's command line in this process, sample the RSS and
the main thread's stack every 50 ms, and print the highest samples with the code that was running.

    python bench/peak_memory.py [--every 0.05] [--top 8] [--out peaks.txt] -- clean data.csv --out out ...

RSS counts everything the process holds: DuckDB's buffer pool (capped by ``memory_limit``) and
what lies outside it (Python objects, Arrow tables handed to Python, Python UDF state, DuckDB
allocations the pool does not track). The stack names the step that held the memory at the
peak; ``--out`` is rewritten every 10 s, so a long run shows its peaks so far. Not a test.

Each peak also says where the memory was: ``heap`` is what glibc's malloc has handed out and not
got back (DuckDB's pool and its untracked allocations, Python objects), ``free`` what malloc
keeps though it was freed (returned to the system only by ``malloc_trim``), ``arrow`` what
pyarrow's own allocator holds (Arrow tables handed to or from DuckDB). With ``--duckdb`` each
sample also asks DuckDB (through a cursor on the command's newest connection) how much its buffer
pool holds and has spilled (``duckdb_memory()``), and splits the RSS into anonymous memory and
mapped files (``/proc/self/status``): what the anonymous part holds beyond the pool lies outside
``memory_limit``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import threading
import time
import traceback
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
GIB = 2**30


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _mallinfo() -> tuple[int, int] | None:
    """(bytes malloc has handed out, bytes it holds free) from glibc, or None elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None
    m = libc.mallinfo2()
    return m.uordblks + m.hblkhd, m.fordblks


def _arrow() -> int:
    """Bytes pyarrow's allocator holds (0 while pyarrow is not imported)."""
    pa = sys.modules.get("pyarrow")
    try:
        return int(pa.total_allocated_bytes()) if pa is not None else 0
    except AttributeError:  # pyarrow is being imported by the main thread just now
        return 0


def rss() -> int:
    """This process's resident set size, in bytes (``/proc/self/statm``)."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * PAGE


def _anon_file() -> tuple[int, int]:
    """(anonymous, file-backed) resident bytes from /proc/self/status."""
    found = {"RssAnon:": 0, "RssFile:": 0}
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            key = line.split(":", 1)[0] + ":"
            if key in found:
                found[key] = int(line.split()[1]) * 1024
    return found["RssAnon:"], found["RssFile:"]


class DuckDBWatch:
    """Remembers the connections the command opens; reports the newest one's buffer pool."""

    def __init__(self) -> None:
        import duckdb

        self.connections: list[object] = []
        self.cursor: tuple[object, object] | None = None
        real = duckdb.connect

        def connect(*args: object, **kwargs: object) -> object:
            con = real(*args, **kwargs)
            self.connections.append(con)
            return con

        duckdb.connect = connect  # type: ignore[assignment]

    def pool(self) -> str:
        if not self.connections:
            return ""
        con = self.connections[-1]
        try:
            if self.cursor is None or self.cursor[0] is not con:
                self.cursor = (con, con.cursor())  # type: ignore[attr-defined]
            used, spilled = self.cursor[1].execute(  # type: ignore[attr-defined]
                "SELECT sum(memory_usage_bytes), sum(temporary_storage_bytes) FROM duckdb_memory()").fetchone()
        except Exception:  # closed, or not a DuckDB connection any more
            self.cursor = None
            return ""
        return f", pool {int(used or 0) / GIB:.2f}, spilled {int(spilled or 0) / GIB:.2f}"


def _short(filename: str) -> str:
    if "/crmtool/" in filename:  # crmtool from any checkout or copy (PYTHONPATH)
        return "crmtool/" + filename.rsplit("/crmtool/", 1)[1]
    for marker in ("site-packages/", "src/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


class Sampler:
    def __init__(self, every: float, top: int, out: Path | None, watch: DuckDBWatch | None = None) -> None:
        self.every, self.top, self.out, self.watch = every, top, out, watch
        self.samples: list[tuple[int, float, list[str], str]] = []
        #: the highest heap (malloc in use) and Arrow samples: (bytes, seconds, innermost frame)
        self.most: dict[str, tuple[int, float, str]] = {"heap": (0, 0.0, ""), "arrow": (0, 0.0, "")}
        self.main = threading.get_ident()
        self.start = time.perf_counter()
        self.stop = threading.Event()

    def run(self) -> None:
        last = time.perf_counter()
        while not self.stop.wait(self.every):
            frame = sys._current_frames().get(self.main)
            stack = [f"{_short(f.filename)}:{f.lineno} {f.name}" for f in traceback.extract_stack(frame)][-8:] \
                if frame else []
            heap = _mallinfo()
            now = time.perf_counter() - self.start
            for what, size in (("heap", heap[0] if heap else 0), ("arrow", _arrow())):
                if size > self.most[what][0]:
                    self.most[what] = (size, now, next((f for f in reversed(stack) if f.startswith("crmtool/")), ""))
            where = (f" (heap {heap[0] / GIB:.2f}, free {heap[1] / GIB:.2f}, " if heap else " (") + \
                f"arrow {_arrow() / GIB:.2f}"
            if self.watch is not None:
                anon, mapped = _anon_file()
                where += f", anon {anon / GIB:.2f}, files {mapped / GIB:.2f}{self.watch.pool()}"
            where += " GiB)"
            self.samples.append((rss(), time.perf_counter() - self.start, stack, where))
            if self.out and time.perf_counter() - last > 10:
                self.out.write_text(self.report(), encoding="utf-8")
                last = time.perf_counter()

    def report(self) -> str:
        """The highest samples, one per distinct place (the innermost four frames)."""
        seen: set[tuple[str, ...]] = set()
        lines: list[str] = []
        for rss, at, stack, where in sorted(self.samples, key=lambda s: -s[0]):
            place = tuple(stack[-4:])
            if place in seen:
                continue
            seen.add(place)
            lines.append(f"{rss / GIB:.2f} GiB at {at:.1f} s{where}\n" + "".join(f"    {s}\n" for s in stack))
            if len(seen) >= self.top:
                break
        lines += [f"most {what}: {size / GIB:.2f} GiB at {at:.1f} s in {frame}\n"
                  for what, (size, at, frame) in self.most.items()]
        return "".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=float, default=0.05, help="seconds between samples")
    parser.add_argument("--top", type=int, default=8, help="how many places to print")
    parser.add_argument("--out", type=Path, default=None, help="also write the report here (every 10 s)")
    parser.add_argument("--duckdb", action="store_true",
                        help="also sample DuckDB's buffer pool and the anonymous/file split of the RSS")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="crmtool's arguments, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    sampler = Sampler(args.every, args.top, args.out, DuckDBWatch() if args.duckdb else None)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    sys.argv = ["crmtool", *command]
    from crmtool.cli import main as crmtool_main

    code: object = 0
    try:
        crmtool_main()
    except SystemExit as exc:
        code = exc.code
    sampler.stop.set()
    thread.join()
    report = sampler.report()
    if args.out:
        args.out.write_text(report, encoding="utf-8")
    sys.stderr.write(f"exit {code}; peak RSS by place:\n{report}")


if __name__ == "__main__":
    main()
