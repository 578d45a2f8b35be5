"""fix_mojibake's answers without ftfy (plain Spanish letters, simple cp1252 pairs) equal ftfy's."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ftfy.badness import BADNESS_RE
from hypothesis import given, settings
from hypothesis import strategies as st

from crmtool import normalise
from crmtool.normalise import _PAIRS, _PLAIN_BAD, _PLAIN_LOWER, _PLAIN_UPPER, _mojibake_without_ftfy
from crmtool.normalise import _mojibake_with_ftfy as _ftfy

ROOT = Path(__file__).resolve().parents[2]
ASCII = [chr(c) for c in range(0x20, 0x7F)]
LETTERS = list(_PLAIN_LOWER + _PLAIN_UPPER)
ALPHABET = ASCII + LETTERS


def test_every_bad_window_of_up_to_three_plain_characters_is_refused() -> None:
    """ftfy changes text only where its badness regex matches; over printable ASCII and the plain
    letters no pattern spans more than three characters, so checking every string of up to three
    of them proves the plain test for any length."""
    search = BADNESS_RE.search
    for n in (1, 2, 3):
        for chars in itertools.product(ALPHABET, repeat=n):
            text = "".join(chars)
            if search(text):
                assert _PLAIN_BAD.search(text), text
    assert _mojibake_without_ftfy("ñÑ") is None  # the one bad shape: lower-case before upper-case


def test_plain_pairs_of_characters_are_what_ftfy_returns() -> None:
    for a, b in itertools.product(ALPHABET, repeat=2):
        known = _mojibake_without_ftfy(a + b)
        if known is not None:
            assert known == _ftfy(a + b) == a + b


@pytest.mark.parametrize("pair", sorted(_PAIRS))
def test_each_pair_is_repaired_as_ftfy_repairs_it(pair: str) -> None:
    assert BADNESS_RE.search(pair)  # bad on its own, so any text holding it is bad
    for before, after in itertools.product(["", "a", "N", " ", "-", "'", ".", "Mu", "x ", "1"], repeat=2):
        text = before + pair + after
        assert _mojibake_without_ftfy(text) == _ftfy(text) == before + _PAIRS[pair] + after, text


_PLAIN_TEXT = st.text(alphabet=st.sampled_from(ALPHABET), max_size=40)
_PAIRED_TEXT = st.lists(st.sampled_from(ASCII + ASCII + sorted(_PAIRS)), max_size=20).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_PLAIN_TEXT, _PAIRED_TEXT, st.text(max_size=20)))
def test_the_fast_answer_is_ftfys_on_any_text(text: str) -> None:
    known = _mojibake_without_ftfy(text)
    if known is not None:
        assert known == _ftfy(text)
    assert normalise.fix_mojibake(text) == _ftfy(text)


def test_a_ten_row_validate_with_every_example_rule_does_not_load_ftfy(tmp_path: Path) -> None:
    """The bench's 10-row export (accented names and one ``NÃºria``) needs no ftfy: fails on the
    code before the fast path, which sent every non-ASCII name to ftfy."""
    data = tmp_path / "customers_10.csv"
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen_customers.py"), "10", str(data),
                    "--encoding", "cp1252", "--delimiter", ";"], check=True)
    assert "NÃºria".encode("cp1252") in data.read_bytes()  # the mojibake the rule repairs is there
    probe = ("import runpy, sys\n"
             f"sys.argv = ['crmtool', 'validate', {str(data)!r}, '--rules', {str(ROOT / 'rules')!r}, "
             "'--format', 'json']\n"
             "try:\n    runpy.run_module('crmtool', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "sys.stderr.write('LOADED ' + ' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'ftfy')))\n")
    env = {**os.environ, "COLUMNS": "100"}
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                          check=False)
    assert '"rules"' in done.stdout, done.stderr[-2000:]
    assert done.stderr.rstrip().endswith("LOADED"), done.stderr[-500:]
