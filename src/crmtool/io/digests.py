"""SHA-256 of files read on one helper thread while DuckDB works (it releases the GIL).

``clean`` reads its input's digest beside the rules (138 MB at 1M rows: 1.3-2 s of wall under load
that was on the audit phase's path); ``segment`` reads its inputs from the start of the run and
each output as soon as it is written (hundreds of MB: read once, not once for the manifest and
again for the step).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

#: the helper thread's name (a prefix: ThreadPoolExecutor numbers it)
THREAD_NAME = "crmtool-digest"


class FileDigests:
    """Each file handed in is read on the helper thread; :meth:`sha256` waits for its digest and
    raises what its read raised; a file never handed in gives ``None`` (the caller reads it)."""

    def __init__(self, paths: list[Path] | None = None) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=THREAD_NAME)
        self._futures: dict[Path, Future[str]] = {}
        for path in paths or []:
            self.add(path)

    def add(self, path: Path, key: Path | None = None) -> None:
        """Read ``path``; its digest is asked for as ``key`` (default ``path``: e.g. the name a staged
        file gets once it is moved into place)."""
        from crmtool.io.readers import file_sha256

        self._futures[key or path] = self._pool.submit(file_sha256, path)

    def sha256(self, path: Path) -> str | None:
        future = self._futures.get(path)
        return future.result() if future is not None else None

    def close(self) -> None:
        """Stop the helper thread (reads not started are dropped; a read under way ends first)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
