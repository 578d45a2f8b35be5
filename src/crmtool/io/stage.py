"""Private staging folders inside an output folder (and in the temp dir, for data in transit to
Spark), and the sweep of those a killed run left.

``clean`` writes its outputs into ``<out>/.crmtool-stage-XXXX/`` and moves them into place when
all of them are written. A run killed with ``kill -9`` cannot remove its folder, so the next run
does: every stage folder of the same kind whose lock no live process holds. The lock is an
``flock`` on ``<stage>/.lock``, taken right after the folder is made and held until it is
removed; the kernel drops it when its process dies, however it dies.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from crmtool.errors import UsageError

STAGE_PREFIX = ".crmtool-stage-"
#: private folders under the temp dir for personal data in transit (Spark's staged input and the
#: parts it sends back): see :func:`private_scratch`
SCRATCH_PREFIX = ".crmtool-scratch-"
LOCK_NAME = ".lock"
#: a stage folder without its lock file is only a folder being made (or an older version's):
#: it is taken as stale once it is older than this
UNLOCKED_GRACE_S = 600.0


class Stage:
    """A staging folder held (locked) by this process until :meth:`remove`."""

    def __init__(self, out_dir: Path, prefix: str = STAGE_PREFIX) -> None:
        self.out_dir = out_dir
        # made under another name, locked, then renamed: a folder named like a stage always has
        # its lock taken, so a sweep can never see a live run's folder before its lock
        making = Path(tempfile.mkdtemp(prefix=".crmtool-making-", dir=out_dir))
        self._fd: int | None = os.open(making / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path = making.with_name(prefix + making.name[len(".crmtool-making-"):])
        os.rename(making, self.path)

    def publish(self, targets: Iterable[Path]) -> None:
        """Move each staged file into place: ``target`` (a path under ``out_dir``) from the same
        relative path in the stage. Called once every file of the run is staged."""
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.path / target.relative_to(self.out_dir), target)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _stale(folder: Path) -> bool:
    """True when no live process holds ``folder``'s lock (tried without waiting)."""
    lock = folder / LOCK_NAME
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        try:
            return time.time() - folder.stat().st_mtime > UNLOCKED_GRACE_S
        except OSError:
            return False
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live run holds it
    finally:
        os.close(fd)  # closing drops the lock we may have taken
    return True


def sweep_stale(out_dir: Path, prefix: str = STAGE_PREFIX) -> list[str]:
    """Remove the stage folders of ``prefix`` in ``out_dir`` that no live run holds; their names."""
    removed: list[str] = []
    if not out_dir.is_dir():
        return removed
    for folder in sorted(out_dir.glob(prefix + "*")):
        if folder.is_dir() and not folder.is_symlink() and _stale(folder):
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                removed.append(folder.name)
    return removed


def open_stage(out_dir: Path) -> Stage:
    """A new stage in ``out_dir`` (made when missing; one clear line when it cannot be), after sweeping
    the stage folders of runs killed before they could remove theirs."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out_dir}: cannot create the folder ({exc.strerror})") from None
    sweep_stale(out_dir)
    return Stage(out_dir)


@contextmanager
def staged(out_dir: Path) -> Iterator[Stage]:
    """:func:`open_stage`, removed again on the way out (what was not published goes with it)."""
    stage = open_stage(out_dir)
    try:
        yield stage
    finally:
        stage.remove()


def sweep_scratch() -> list[str]:
    """Remove the :func:`private_scratch` folders that runs killed before they could remove them
    left in the temp dir (a live run's stay); their names. Cheap: one glob."""
    return sweep_stale(Path(tempfile.gettempdir()), SCRATCH_PREFIX)


@contextmanager
def private_scratch() -> Iterator[Path]:
    """A private (0700), locked folder under the temp dir for personal data that must not outlive
    the run: removed on the way out, and if the run is killed first, by the next run's
    :func:`sweep_scratch` (every recorded run sweeps; see ``Workspace.start_run``)."""
    sweep_scratch()
    stage = Stage(Path(tempfile.gettempdir()), SCRATCH_PREFIX)
    try:
        yield stage.path
    finally:
        stage.remove()
