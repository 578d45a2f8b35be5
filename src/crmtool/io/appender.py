"""Append a large stream of bytes to a file without passing it through the page cache.

A run of ``clean`` appends gigabytes to its audit log, which nothing reads back during the run.
Written the usual way, every byte is first copied into the page cache; on a virtual machine
whose memory balloon hands freed pages back to the host, each of those pages is fresh memory,
and that copy alone cost ~2.5 s of system CPU per GB on the benchmark machine (direct writes of
the same bytes: ~0.1 s per GB; docs/decisions/0005). :class:`DirectAppender` writes whole
blocks with ``O_DIRECT`` from one reused, page-aligned buffer, and the few bytes that do not
fill a block (before the first block boundary and after the last) with ordinary writes.

Where the file system refuses ``O_DIRECT`` (tmpfs, some network file systems) it falls back to
ordinary writes; the bytes in the file are the same either way.
"""

from __future__ import annotations

import errno
import mmap
import os
from pathlib import Path

#: alignment of file offsets, lengths and memory for O_DIRECT: a page covers every block size in use
BLOCK = 4096
#: bytes gathered before one direct write
CHUNK = 8 << 20


class DirectAppender:
    """A binary append-only file: :meth:`write`, :meth:`sync`, :meth:`close`.

    ``direct=False`` gives ordinary buffered writes (the same bytes land in the file).
    """

    def __init__(self, path: Path, *, direct: bool = True) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o666)
        self._pos = os.fstat(self._fd).st_size  # where the next byte goes
        self._direct_fd: int | None = None
        self._buf: mmap.mmap | None = None
        self._fill = 0  # bytes waiting in the buffer; they start at self._pos - self._fill
        if direct and hasattr(os, "O_DIRECT"):
            try:
                self._direct_fd = os.open(path, os.O_WRONLY | os.O_DIRECT | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                self._direct_fd = None
        if self._direct_fd is not None:
            self._buf = mmap.mmap(-1, CHUNK)  # anonymous maps are page-aligned

    @property
    def direct(self) -> bool:
        """Whether whole blocks are still being written with O_DIRECT."""
        return self._direct_fd is not None

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        if self._direct_fd is None or self._buf is None:
            self._write_plain(view)
            return
        if self._fill == 0 and self._pos % BLOCK:
            # up to the next block boundary the ordinary way; direct writes start on a boundary
            head = min(len(view), BLOCK - self._pos % BLOCK)
            self._write_plain(view[:head])
            view = view[head:]
        while len(view):
            take = min(len(view), CHUNK - self._fill)
            self._buf[self._fill:self._fill + take] = view[:take]
            self._fill += take
            self._pos += take
            view = view[take:]
            if self._fill == CHUNK:
                self._drain()

    def _write_plain(self, view: memoryview) -> None:
        while len(view):
            done = os.write(self._fd, view)
            self._pos += done
            view = view[done:]

    def _drain(self) -> None:
        """Write out the buffer: its whole blocks directly, the bytes after the last boundary plainly."""
        assert self._buf is not None
        start, end = self._pos - self._fill, self._fill
        whole = end - end % BLOCK
        done = 0
        try:
            while done < whole and self._direct_fd is not None:
                done += os.pwrite(self._direct_fd, memoryview(self._buf)[done:whole], start + done)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # accepted at open, refused at write (an odd block size): ordinary writes from here on
            self._close_direct()
        self._pos, self._fill = start + done, 0
        with memoryview(self._buf) as view:
            self._write_plain(view[done:end])

    def _close_direct(self) -> None:
        if self._direct_fd is not None:
            os.close(self._direct_fd)
            self._direct_fd = None

    def flush(self) -> None:
        """Put every byte written so far into the file (not yet necessarily on disk)."""
        if self._fill:
            self._drain()

    def sync(self) -> None:
        """What is in the file reaches the disk (fdatasync); bytes still buffered stay buffered."""
        os.fdatasync(self._fd)

    def close(self, *, sync: bool = True) -> None:
        try:
            self.flush()
            if sync:
                os.fsync(self._fd)
        finally:
            self._close_direct()
            if self._buf is not None:
                self._buf.close()
                self._buf = None
            os.close(self._fd)
