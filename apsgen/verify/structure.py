"""Split a normalised answer into its outer structure: tuple, interval, union, set, matrix.

MATH answers wrap scalars in a few containers, and how two containers compare depends on the
kind: points and intervals are ordered and their brackets matter (`(1,2)` is not `[1,2]`),
solution lists and sets are not (`1,2` equals `2,1`), `a \\pm b` is the set {a+b, a-b}.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from apsgen.verify.brackets import enclosed, split_top_level

_MATRIX = re.compile(r"^\\begin\{([pbvBV]?matrix|array)\}(?:\{[lcr|]*\})?(.*)\\end\{\1\}$", re.S)
_OPEN = {"(": ")", "[": "]", "\\{": "\\}"}
_RELATIONS = ("<", ">", "\\leq", "\\geq", "\\lt", "\\gt", "\\le", "\\ge", "\\ne")


@dataclass(frozen=True)
class Shape:
    """kind: scalar | seq | set | union | matrix | equation | relation."""

    kind: str
    items: tuple = ()
    brackets: str = ""  # for seq: the opening and closing bracket, e.g. "(]"


def shape_of(s: str) -> Shape:
    matrix = _MATRIX.match(s)
    if matrix and "\\end{" not in matrix.group(2):  # one matrix, not `A + B` or `A B`
        rows = [r for r in matrix.group(2).split("\\\\") if r.strip()]
        return Shape("matrix", tuple(tuple(cell.strip() for cell in row.split("&")) for row in rows))
    unions = split_top_level(s, "\\cup")
    if len(unions) > 1:
        return Shape("union", tuple(shape_of(part) for part in unions))
    if enclosed(s, "\\{", "\\}"):
        return Shape("set", _expand_plus_minus(split_top_level(s[2:-2], ",")))
    for opening in ("(", "["):
        for closing in (")", "]"):
            if enclosed(s, opening, closing):
                items = split_top_level(s[1:-1], ",")
                if len(items) >= 2:
                    return Shape("seq", tuple(items), opening + closing)
    items = split_top_level(s, ",")
    if len(items) >= 2:
        return Shape("set", _expand_plus_minus(items))
    sides = split_top_level(s, "=")
    if len(sides) == 2:
        return Shape("equation", tuple(sides))
    if any(rel in s for rel in _RELATIONS):
        return Shape("relation", (s,))
    expanded = _expand_plus_minus([s])
    if len(expanded) == 2:
        return Shape("set", expanded)
    return Shape("scalar", (s,))


def _expand_plus_minus(items: list[str]) -> tuple[str, ...]:
    """`a \\pm b` stands for the two answers a+b and a-b."""
    out: list[str] = []
    for item in items:
        parts = split_top_level(item, "\\pm")
        if len(parts) == 2 and parts[1]:
            a, b = parts
            out += [a + "+" + b, a + "-(" + b + ")"] if a else ["-(" + b + ")", b]
        else:
            out.append(item)
    return tuple(out)
