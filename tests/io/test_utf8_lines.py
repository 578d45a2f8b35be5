"""The mixed-encoding line count is vectorised; it must count exactly what the byte pattern finds."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from crmtool.io.readers import _UTF8_SEQUENCE, _utf8_lines


def _by_regex(data: bytes) -> int:
    found = [m.start() for m in re.finditer(_UTF8_SEQUENCE, data)]
    if not found:
        return 0
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    return len(np.unique(np.searchsorted(newlines, np.array(found, dtype=np.int64))))


_PIECES = st.sampled_from([b"\n", b"a", b"\xc3\xb1", b"\xc3", b"\xb1", b"\xe2\x82\xac", b"\xe2\x82",
                           b"\xf0\x9f\x98\x80", b"\xf0\x9f", b"\xf1", b"\x80", b"\xe9", b"\xdf\xbf",
                           b"\xf4\x8f\xbf\xbf", b"\xc1\x81"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=60), st.integers(min_value=1, max_value=9))
def test_vectorised_count_equals_the_pattern(pieces: list[bytes], chunk: int) -> None:
    data = b"".join(pieces)
    assert _utf8_lines(data, chunk=chunk) == _by_regex(data)
    assert _utf8_lines(data) == _by_regex(data)
    with tempfile.TemporaryDirectory() as tmp:  # read from the file piece by piece, as the loader does
        path = Path(tmp) / "export.csv"
        path.write_bytes(data)
        assert _utf8_lines(path, chunk=chunk) == _by_regex(data)


def test_counts_lines_not_sequences() -> None:
    data = "Muñoz;Nuñez\nplain\n".encode() + "José".encode("cp1252") + b"\n\xe2\x82\xac 5\n"
    assert _utf8_lines(data) == 2
