"""Equations in running prose ("50 - 18 = 12 apples left", "4 times 8 = 24"), outside LaTeX math.

Only numbers, `+ - * / × · ÷`, `x`/"times" between numbers, LaTeX `\\times \\cdot \\div` and
brackets are read. A side is read only where it is whole: not next to a letter, `%`, `^`, `!`, a
brace or a word that binds a number to more than is read ("of", "half", "twice"), not starting
with an operator that belongs to a term before it ("3n - 4 = 70", "x + y - 1 = 0": the side is not
"4" or "1"), and never across a line break (a list's lines are not one expression). One regex scan
and bounded sides: linear in the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

from apsgen.label.text.equation import Equation

MAX_DIGITS = 18  # a longer number is not read (no huge exact arithmetic on model output)
MAX_TOKENS = 41  # tokens per side of an equation; a longer side is not read

_TOKEN = re.compile(
    r"(?P<clock>\d+(?::\d+)+)"  # a time or a ratio ("3:45", "2:3:5"): not a number we read
    r"|(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])|\d+(?:\.\d+)?)"
    r"|(?P<op>\\times|\\cdot|\\div|[+\-−*/×·÷])"
    r"|(?P<open>\(|\\left\()"  # square brackets are not read: many texts mean the greatest integer
    r"|(?P<close>\)|\\right\))"
    r"|(?P<eq>=)"
    # Where one expression ends for certain: a line break (a list's lines, a display's rows), the
    # end of a math span, LaTeX's row break. The start of a math span is a break too, but a minus
    # right after it is a sign.
    r"|(?P<mathopen>\\\[|\\\()"
    r"|(?P<break>[ \t]*\n\s*|\\\]|\\\)|\\\\)"
    r"|(?P<space>\s+|\\?\$|\\[,;!: ])"
    r"|(?P<word>[A-Za-z]+)"
    r"|(?P<other>.)",
    re.DOTALL,
)
# Words right before a number that make the number part of a larger expression than we read.
_BINDING_WORDS = frozenset(
    "of times by per than plus minus half twice thrice double triple quarter third percent x".split()
)
_MUL = frozenset(("*", "×", "·", "\\times", "\\cdot", "x", "times"))
_DIV = frozenset(("/", "÷", "\\div"))
_MINUS = frozenset(("-", "−"))
_BOUNDARY = frozenset(("break", "mathopen"))
_EXPR = frozenset(("num", "op", "open", "close"))


@dataclass(frozen=True)
class Tok:
    kind: str  # num, op, open, close, eq, mathopen, break, word, other
    text: str
    glued: bool  # no space between it and the previous token
    start: int
    end: int


def tokens(text: str) -> list[Tok]:
    out: list[Tok] = []
    glued = True
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        if kind == "clock":
            kind = "other"
        if kind == "space":
            glued = False
            continue
        value = m.group()
        if kind == "break" and out and out[-1].kind in _BOUNDARY:
            glued = True
            continue  # one boundary is enough
        if kind == "word" and value in ("x", "times") and out and out[-1].kind == "num" and not glued:
            kind = "op"  # "2 x 3", "4 times 8": a times sign after a spaced number
        out.append(Tok(kind, value, glued, m.start(), m.end()))
        glued = True
    return out


def _number(text: str) -> Fraction | None:
    digits = text.replace(",", "")
    if len(digits.replace(".", "")) > MAX_DIGITS:
        return None
    return Fraction(digits)


class _Parser:
    """Recursive descent over number/operator/bracket tokens: sum := product (± product)*,
    product := factor ((×|÷) factor)*, factor := -factor | number | (sum)."""

    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.i = 0

    def parse(self) -> Fraction | None:
        try:
            value = self._sum(0)
        except (ValueError, ZeroDivisionError):
            return None
        return value if value is not None and self.i == len(self.toks) else None

    def _peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _sum(self, depth: int) -> Fraction | None:
        value = self._product(depth)
        while value is not None and (t := self._peek()) is not None and t.text in ("+", "-", "−"):
            self.i += 1
            right = self._product(depth)
            if right is None:
                return None
            value = value + right if t.text == "+" else value - right
        return value

    def _product(self, depth: int) -> Fraction | None:
        value = self._factor(depth)
        while value is not None and (t := self._peek()) is not None and (t.text in _MUL or t.text in _DIV):
            self.i += 1
            right = self._factor(depth)
            if right is None:
                return None
            value = value * right if t.text in _MUL else value / right
        return value

    def _factor(self, depth: int) -> Fraction | None:
        t = self._peek()
        if t is None or depth > 8:
            return None
        if t.text in _MINUS:
            self.i += 1
            inner = self._factor(depth + 1)
            return None if inner is None else -inner
        if t.kind == "num":
            self.i += 1
            return _number(t.text)
        if t.kind == "open":
            self.i += 1
            inner = self._sum(depth + 1)
            close = self._peek()
            if inner is None or close is None or close.kind != "close":
                return None
            self.i += 1
            return inner
        return None


def _value(toks: list[Tok], start: int, stop: int) -> Fraction | None:
    side = toks[start:stop]
    if not side or len(side) > MAX_TOKENS:
        return None
    return _Parser(side).parse()


def _left_bounded(toks: list[Tok], start: int) -> bool:
    """Nothing before the left side that could make it part of something larger.

    A side that starts with an operator is a term's tail ("3n - 4", "x + y - 1", "T - 1") unless
    it is a sign right after `=`, an opening bracket or the start of a math span; after anything
    else (a letter, a brace, a line break that may be a list's bullet) it is not read."""
    first = toks[start]
    before = toks[start - 1] if start > 0 else None
    if first.kind == "op":
        return first.text in _MINUS and before is not None and before.kind in ("eq", "open", "mathopen")
    if before is None:
        return True
    if first.glued and before.kind in ("word", "other"):
        return False  # "x2", "^3", "{5"
    if before.kind == "word":
        return before.text.lower() not in _BINDING_WORDS
    if before.kind in ("eq", "break", "mathopen"):
        return True  # a chain: "x = 5 + 3 = 8"; a new line or math span
    return before.kind == "other" and before.text in ",:;.?!"


def _right_bounded(toks: list[Tok], stop: int) -> bool:
    """Nothing after the right side that could make it part of something larger."""
    if stop == len(toks):
        return True
    after = toks[stop]
    if after.kind in ("eq", "break"):
        return True
    if after.glued and after.kind in ("word", "other") and after.text not in ",.;:?!)":
        return False  # "4x", "10^3", "5%", "3!"
    if after.kind == "word" and len(after.text) == 1 and after.text not in "aAI":
        return False  # "= 10 - 2 y": a variable's term
    return not (after.kind == "other" and after.text in "%^!{}_\\'")


def prose_equations(text: str) -> Iterator[Equation]:
    """Every equation between two whole plain-number sides with an operation on one of them."""
    toks = tokens(text)
    n = len(toks)
    for i, tok in enumerate(toks):
        if tok.kind != "eq":
            continue
        lstart = i
        while lstart > 0 and toks[lstart - 1].kind in _EXPR:
            lstart -= 1
        rstop = i + 1
        while rstop < n and toks[rstop].kind in _EXPR:
            rstop += 1
        if lstart == i or rstop == i + 1 or not _left_bounded(toks, lstart) or not _right_bounded(toks, rstop):
            continue
        if not (_computes(toks, lstart, i) or _computes(toks, i + 1, rstop)):
            continue  # "2 = 4", "0 = -12": a claim, not arithmetic
        left, right = _value(toks, lstart, i), _value(toks, i + 1, rstop)
        if left is None or right is None:
            continue
        start, end = toks[lstart].start, toks[rstop - 1].end
        yield Equation(left, right, text[start : tok.start], text[tok.end : end], start, end,
                       _head(toks, i + 1, rstop))


def _computes(toks: list[Tok], start: int, stop: int) -> bool:
    """The side has an operation (a leading sign alone is a number)."""
    return any(t.kind == "op" for t in toks[start + (toks[start].text in _MINUS) : stop])


def _head(toks: list[Tok], start: int, stop: int) -> Fraction | None:
    """The value of the side's first term, when a top-level `+` or `-` follows it."""
    depth = 0
    for j in range(start, stop):
        t = toks[j]
        depth += (t.kind == "open") - (t.kind == "close")
        if depth == 0 and j > start and t.text in ("+", "-", "−") and toks[j - 1].kind != "op":
            return _value(toks, start, j)
    return None
