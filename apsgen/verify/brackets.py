"""Bracket scanning, once for the whole verifier: matching a LaTeX group, splitting at the top
level, telling whether one pair encloses everything, and how deep brackets nest.

Every function is one left-to-right pass (model output can be megabytes of junk). Two readings of
a backslash: in LaTeX groups (`matching_brace`, `closing_braces`) an escaped brace (`\\{`, `\\}`) is
literal text and `\\\\` is an escaped backslash; in answers (`split_top_level`, `enclosed`,
`deepest`) `\\{ ... \\}` is a set's bracket pair, so it opens and closes like `(` and `)`.
"""

from __future__ import annotations

import re

OPENING = "([{"
CLOSING = ")]}"

# A brace, an escaped brace (literal, not grouping) or an escaped backslash (so that `\\\\{` still
# opens a group). Scanning these with a regex skips ordinary text in C.
_BRACE_TOKEN = re.compile(r"(\{)|(\})|\\[\\{}]")


def matching_brace(text: str, start: int) -> int | None:
    """Index of the `}` closing the `{` at `start`, or None when it is never closed."""
    depth = 0
    for m in _BRACE_TOKEN.finditer(text, start):
        if m.lastindex == 1:
            depth += 1
        elif m.lastindex == 2:
            depth -= 1
            if depth == 0:
                return m.start()
    return None


def closing_braces(text: str, start: int) -> dict[int, int]:
    """For every `{` at or after `start` that is closed, the index of its `}` (one stack pass)."""
    closing: dict[int, int] = {}
    stack: list[int] = []
    for m in _BRACE_TOKEN.finditer(text, start):
        if m.lastindex == 1:
            stack.append(m.start())
        elif m.lastindex == 2 and stack:
            closing[stack.pop()] = m.start()
    return closing


def split_top_level(s: str, separator: str) -> list[str]:
    """Split on `separator` where no bracket is open (LaTeX `\\{`/`\\}` count as brackets)."""
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    n = len(s)
    width = len(separator)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and s[i + 1] in "{}":
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if c in OPENING:
            depth += 1
        elif c in CLOSING:
            depth -= 1
        elif depth == 0 and s.startswith(separator, i):
            parts.append(s[start:i])
            i += width
            start = i
            continue
        i += 1
    parts.append(s[start:])
    return parts


def enclosed(s: str, opening: str, closing: str) -> bool:
    """True when `s` is one bracket pair around everything (not `(1,2)\\cup(3,4)`)."""
    if not (s.startswith(opening) and s.endswith(closing)):
        return False
    depth = 0
    for c in s[len(opening) : len(s) - len(closing)]:
        if c in OPENING:
            depth += 1
        elif c in CLOSING:
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def deepest(text: str) -> int:
    """How deep brackets of any kind nest in `text`."""
    depth = most = 0
    for c in text:
        if c in OPENING:
            depth += 1
            most = max(most, depth)
        elif c in CLOSING:
            depth -= 1
    return most
