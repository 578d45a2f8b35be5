"""Plain regular expressions and strptime formats, known to be valid without asking DuckDB.

``regex`` and ``date`` rules have their pattern or formats compiled by DuckDB when the rule file
loads (RE2 and DuckDB's strptime decide, not Python's ``re``). That takes DuckDB's default
connection, a second database instance beside the workspace's: about 25 ms of CPU in a 10-row
``validate`` (issue 19). Most patterns and formats are plain, and for those the answer is known:
:func:`re2_compiles` and :func:`strptime_reads` say True only for a closed subset that both
always accept, and None (ask DuckDB, which also words the error) for anything else.
``tests/kinds/test_compiles.py`` checks every plain one against DuckDB.
"""

from __future__ import annotations

import re

#: characters that stand for themselves, in a pattern and in a class
_LITERAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-@:/,'\"#=%&!<>~")
#: characters that stand for themselves inside a class only (``[._%+-]``: the usual e-mail pattern)
_IN_CLASS = frozenset(".+*?(){}|$")
#: escapes RE2 reads (classes and escaped punctuation)
_ESCAPES = frozenset("dDwWsS.-+*?()[]{}|\\^$/")
_COUNT = re.compile(r"\{([0-9]{1,3})(,([0-9]{1,3})?)?\}")
#: a counted repetition at most this large, on one character or class (so RE2's program stays small)
_MAX_COUNT = 100
_MAX_LENGTH = 300


def _class_end(pattern: str, i: int) -> int | None:
    """Index after the ``]`` of the plain class opening at ``pattern[i]``, or None."""
    i += 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    items = 0
    while i < len(pattern) and pattern[i] != "]":
        c = pattern[i]
        if c == "\\":
            if i + 1 >= len(pattern) or pattern[i + 1] not in _ESCAPES:
                return None
            i += 2
        elif c == "[" or (c not in _LITERAL and c not in _IN_CLASS):
            return None
        elif i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            lo, hi = c, pattern[i + 2]
            if not (lo.isalnum() and hi.isalnum() and lo.isascii() and hi.isascii() and lo <= hi):
                return None
            i += 3
        else:
            i += 1
        items += 1
    if i >= len(pattern) or items == 0:
        return None
    return i + 1


def re2_compiles(pattern: str) -> bool | None:
    """True when ``pattern`` is plain (literal characters, ``.``, classes, ``\\d``-style and
    punctuation escapes, groups, ``(?:``, ``|``, ``^``, ``$``, ``*+?`` and small ``{n,m}`` counts,
    each after something to repeat): RE2 compiles it. None: ask DuckDB."""
    if len(pattern) > _MAX_LENGTH:
        return None
    i, depth = 0, 0
    atom = False  # whether the last piece can take a quantifier
    single = False  # whether that piece is one character or class (a counted repetition may follow)
    while i < len(pattern):
        c = pattern[i]
        if c in "*+?":
            if not atom:
                return None
            i += 1
            if i < len(pattern) and pattern[i] == "?":  # lazy
                i += 1
            atom = single = False
            continue
        if c == "{":
            m = _COUNT.match(pattern, i)
            if not (m and single):
                return None
            low = int(m.group(1))
            high = int(m.group(3)) if m.group(3) else low
            if high > _MAX_COUNT or low > high:
                return None
            i = m.end()
            if i < len(pattern) and pattern[i] == "?":
                i += 1
            atom = single = False
            continue
        if c == "[":
            end = _class_end(pattern, i)
            if end is None:
                return None
            i, atom, single = end, True, True
        elif c == "\\":
            if i + 1 >= len(pattern) or pattern[i + 1] not in _ESCAPES:
                return None
            i, atom, single = i + 2, True, True
        elif c == "(":
            if pattern.startswith("(?", i):
                if not pattern.startswith("(?:", i):
                    return None
                i += 2
            depth += 1
            i, atom, single = i + 1, False, False
        elif c == ")":
            if depth == 0:
                return None
            depth -= 1
            i, atom, single = i + 1, True, False
        elif c in "|^$":
            i, atom, single = i + 1, False, False
        elif c == "." or c in _LITERAL:
            i, atom, single = i + 1, True, True
        else:
            return None
    return True if depth == 0 else None


#: strptime specifiers DuckDB reads, written without modifiers
_SPECIFIERS = frozenset("aAbBdHIjmMpSyYfzZ%")
_FORMAT_LITERAL = _LITERAL | frozenset(".")


def strptime_reads(fmt: str) -> bool | None:
    """True when ``fmt`` is plain (the specifiers ``%a %A %b %B %d %H %I %j %m %M %p %S %y %Y %f
    %z %Z %%`` and printable ASCII literals): DuckDB's strptime reads it. None: ask DuckDB."""
    if not fmt or len(fmt) > _MAX_LENGTH:
        return None
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            if i + 1 >= len(fmt) or fmt[i + 1] not in _SPECIFIERS:
                return None
            i += 2
        elif fmt[i] in _FORMAT_LITERAL:
            i += 1
        else:
            return None
    return True
