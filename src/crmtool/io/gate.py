"""The one way files reach a walled DuckDB session: through the workspace's private folder.

A workspace session runs with ``enable_external_access = false``, its only allowed directory a
private folder (the *sandbox*) and its configuration locked (see :mod:`crmtool.workspace` and
``docs/decisions/0007-user-sql-sandbox.md``). DuckDB resolves symbolic links before it checks a
path, so a file crmtool reads is hard-linked into the sandbox (copied when it lives on another
file system), and a file crmtool writes is written there first and then moved to its target.

On a session that is not walled (a plain ``duckdb.connect()``) both helpers hand back the path
itself, so library users and tests that bring their own connection see no difference.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

#: the sandbox folder's name starts with this (``.<workspace stem>.io-`` beside a workspace file)
SANDBOX_MARK = ".io-"
_COUNTER = itertools.count(1)


def sandbox_of(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The sandbox folder of a walled session, or None when the session may reach any file."""
    row = con.execute("SELECT current_setting('enable_external_access'), "
                      "current_setting('allowed_directories')").fetchall()[0]
    if row[0]:
        return None
    for entry in row[1] or []:
        path = Path(str(entry).rstrip("/"))
        if SANDBOX_MARK in path.name:
            return path
    return None


def _safe(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z._-]+", "_", name)[-80:] or "file"


def readable(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    """A path the session may read that holds ``path``'s bytes (the name's suffix is kept).

    Walled session: a hard link in the sandbox (a copy when the file is on another file system);
    remove it with :func:`release` once the data is loaded, or leave it to the workspace's close.
    """
    box = sandbox_of(con)
    if box is None:
        return str(path)
    target = box / f"in-{next(_COUNTER)}-{_safe(path.name)}"
    try:
        # the file a symbolic link names: a hard link to the link itself would be a symbolic link
        # in the sandbox that DuckDB resolves, and refuses, outside it
        os.link(os.path.realpath(path), target)
    except OSError:  # another file system, or links not allowed: a private copy
        shutil.copyfile(path, target)
    return str(target)


def release(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Remove a file :func:`readable` put in the sandbox (the input itself is never touched)."""
    box = sandbox_of(con)
    if box is not None and Path(name).parent == box:
        Path(name).unlink(missing_ok=True)


@contextmanager
def writable(con: duckdb.DuckDBPyConnection, target: Path) -> Iterator[str]:
    """A path the session may write; what is written there ends up at ``target`` (a temp file
    beside the real output, see :func:`crmtool.io.writers.atomic_path`)."""
    box = sandbox_of(con)
    if box is None:
        yield str(target)
        return
    staged = box / f"out-{next(_COUNTER)}-{_safe(target.name)}"
    try:
        yield str(staged)
        try:
            os.replace(staged, target)
        except OSError:  # another file system: copy into the temp file, which is renamed atomically later
            shutil.copyfile(staged, target)
    finally:
        staged.unlink(missing_ok=True)
