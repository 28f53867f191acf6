"""Make a correct step wrong on purpose, the way a strong policy errs: without a false equation.

A question's own recovery is measured at prefixes known to be wrong. Where a policy writes no false
equation (strong policies rarely do), the search makes one such prefix from the policy's own
correct step (`apsgen.search.own_recovery`): an equation `a op b = c` between plain numbers gets
a misread operand and the result that follows from it (`23 + 14 = 37` becomes `23 + 15 = 38`: the
equation still holds, no check can see the error), and a step without one gets its last number
miscopied (`So far, Ada has 37 crates.` becomes `... 38 crates.`). The change is decided by the
step's text alone, so the same step is always planted the same way. Linear in the text; the text is
only read as digits and operator signs, never evaluated.
"""

from __future__ import annotations

import hashlib
import re

MAX_CHARS = 20_000
MAX_DIGITS = 12
# The last equation between two whole numbers and a whole result: `23 + 14 = 37`, `4 \times 6 = 24`.
_EQUATION = re.compile(
    r"(?<![\d.,^_{])(\d{1,12})[ \t]*(\+|-|−|\*|×|x|\\times|\\cdot)[ \t]*(\d{1,12})[ \t]*=[ \t]*(\d{1,12})(?!\d|[.,]\d|[\^%])"
)
_NUMBER = re.compile(r"(?<![\d.,^_{])\d{1,12}(?!\d|[.,]\d|[\^%])")


def _shift(text: str) -> int:
    """1, 2 or 3, fixed by the text: how far the planted number moves."""
    return 1 + hashlib.blake2b(text.encode(), digest_size=2).digest()[0] % 3


def _apply(op: str, a: int, b: int) -> int | None:
    if op == "+":
        return a + b
    if op in ("-", "−"):
        return a - b
    return a * b


def misread(step: str) -> str | None:
    """The step's last true equation between whole numbers with its operand misread and its result
    following from that (`23 + 14 = 37` -> `23 + 16 = 39`), or None when it has none."""
    if len(step) > MAX_CHARS:
        return None
    last = None
    for last in _EQUATION.finditer(step):
        pass
    if last is None:
        return None
    a, op, b, c = int(last.group(1)), last.group(2), int(last.group(3)), int(last.group(4))
    if _apply(op, a, b) != c:
        return None
    b2 = b + _shift(step)
    c2 = _apply(op, a, b2)
    if c2 is None or c2 < 0 or len(str(c2)) > MAX_DIGITS:
        return None
    return step[: last.start(3)] + str(b2) + step[last.end(3) : last.start(4)] + str(c2) + step[last.end(4) :]


def plant_error(step: str) -> str | None:
    """The step with an error planted (see the module doc), or None when it holds no number to
    change (or is too long to read)."""
    if len(step) > MAX_CHARS:
        return None
    found = misread(step)
    if found is not None:
        return found
    shift = _shift(step)
    number = None
    for number in _NUMBER.finditer(step):
        pass
    if number is None:
        return None
    return step[: number.start()] + str(int(number.group()) + shift) + step[number.end() :]
