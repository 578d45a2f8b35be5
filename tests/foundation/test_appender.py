"""io.appender: direct (O_DIRECT) appends give exactly the bytes ordinary appends give."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmtool.io import appender
from crmtool.io.appender import BLOCK, DirectAppender

# a small buffer, so that a few kilobytes of writes cross many buffer and block boundaries
SMALL_CHUNK = 4 * BLOCK


def _direct_supported(folder: Path) -> bool:
    probe = folder / "probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT)
    except OSError:
        return False
    os.close(fd)
    probe.unlink()
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(existing=st.binary(max_size=3 * BLOCK),
       pieces=st.lists(st.tuples(st.integers(0, 3 * SMALL_CHUNK), st.booleans()), max_size=12))
def test_bytes_and_order_are_kept_across_blocks_buffers_and_flushes(
        tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
        existing: bytes, pieces: list[tuple[int, bool]]) -> None:
    monkeypatch.setattr(appender, "CHUNK", SMALL_CHUNK)
    path = tmp_path_factory.mktemp("append") / "log"
    path.write_bytes(existing)  # appending starts at any offset, aligned or not
    expected = bytearray(existing)
    out = DirectAppender(path)
    for n, (size, flush) in enumerate(pieces):
        data = bytes((n + i) % 251 for i in range(size))
        out.write(data)
        expected += data
        if flush:
            out.flush()
            assert path.read_bytes() == bytes(expected)
    out.close()
    assert path.read_bytes() == bytes(expected)


def test_whole_blocks_go_direct_on_a_file_system_that_allows_it(tmp_path: Path) -> None:
    if not _direct_supported(tmp_path):
        pytest.skip("the temporary folder's file system refuses O_DIRECT")
    path = tmp_path / "log"
    path.write_bytes(b"x" * 100)
    out = DirectAppender(path)
    assert out.direct
    out.write(b"y" * (3 * BLOCK + 5))
    out.close()
    assert path.read_bytes() == b"x" * 100 + b"y" * (3 * BLOCK + 5)


def test_ordinary_writes_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "log"
    out = DirectAppender(path, direct=False)
    assert not out.direct
    out.write(b"a" * (BLOCK + 1))
    out.close()
    assert path.read_bytes() == b"a" * (BLOCK + 1)


def test_a_refused_direct_write_falls_back_to_ordinary_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "log"
    out = DirectAppender(path)
    if not out.direct:
        pytest.skip("the temporary folder's file system refuses O_DIRECT")
    real_pwrite = os.pwrite

    def refuse(fd: int, data: bytes, offset: int) -> int:
        if fd == out._direct_fd:
            raise OSError(22, "Invalid argument")  # EINVAL, as for an unsupported block size
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", refuse)
    data = bytes(range(256)) * 200
    out.write(data)
    out.close()
    assert not out.direct
    assert path.read_bytes() == data
