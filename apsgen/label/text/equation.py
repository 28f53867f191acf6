"""An equation read from a step's text, and when a stated equation counts as false.

Both readers (`prose`, `latex`) hand over what they read as an `Equation`: the two sides' exact
values and texts and where it stands in the step. Whether it is false is decided here, once for
both, and conservatively: a "certain wrong" claim cannot be overturned by any rollout, so where a
careful reader would accept the equation as meant, it holds:

- exact values must differ (`values_match`; a float that cannot be told apart holds), and a
  running computation that carries the left side on as the right side's first term ("3/2 = 1.50
  + 3.00 = 4.50") holds;
- a side that is one decimal number holds when it is the other side's value rounded or cut to its
  places ("10 / 3 = 3.33", "14 / 19 = 0.736", "0.33 = \\frac{1}{3}"), and a left side with decimals of three or more places is an
  approximation: the right side holds within that precision ("(2.8284)^2 = 8");
- one division of whole numbers whose right side is the whole quotient is a division with a
  remainder ("410 \\div 333 = 1"); a remainder stated right after it must be right too;
- an equation the text itself rejects (in a question, "impossible", "contradiction", "not ...",
  "\\neq") or puts in another base ("in base 7") is no claim, and one beside a modulus need only
  hold modulo it ("7^2 = 49 = 5 \\pmod{11}").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from apsgen.verify.evaluate import Approx, Value, values_match


@dataclass(frozen=True)
class Equation:
    left: Value
    right: Value
    left_text: str
    right_text: str
    start: int  # where it stands in the step's text (for the words around it)
    end: int
    # The right side's first term when it has more than one: a running computation ("3/2 = 1.50 +
    # 3.00 = 4.50") carries the left side on as this term and is read as meant.
    right_head: Value | None = None

    def render(self) -> str:
        return f"{' '.join(self.left_text.split())} = {' '.join(self.right_text.split())}"


_PLACES = re.compile(r"\d\.(\d+)")
_BARE_DECIMAL = re.compile(r"\s*[-−]?\s*\\?\$?\s*[\d,]*\d\.\d+\s*")
_DIVISION = re.compile(
    r"\s*(?:(\d{1,18})\s*(?:\\div|/|÷)\s*(\d{1,18})|\\frac\s*\{\s*(\d{1,18})\s*\}\s*\{\s*(\d{1,18})\s*\})\s*"
)
_REMAINDER = re.compile(
    r"[\s$\\)\]]{0,8}(?:,\s*)?(?:with\s+|and\s+|leaving\s+|leaves\s+)?(?:a\s+)?"
    r"(?:remainders?|rem|R|r)\b[\s:\\,(\[$]{0,8}(?:of\s+)?[\s\\($]{0,4}(\d{1,18})?",
)
# Words that take back or question the equation they stand beside, or say its numbers are not
# plain decimal arithmetic (another base, a modulus).
_REJECTED = re.compile(
    r"\?|\bcontradict|\bimpossib|\bnot\b|n't\b|\bfalse\b|\bwrong\b|\bincorrect|\binvalid|\bno\s+solution"
    r"|\\neq?\b|≠|✗|❌|\bbase\b|\bbinary\b|\boctal\b|\bhexadecimal\b",
    re.IGNORECASE,
)
# A modulus named beside the equation: then its sides need only agree modulo it ("49 = 5 mod 11").
_MODULUS = re.compile(r"(?:\\[bp]?mod\b|\bmod(?:ulo|ulus)?\b)[\s{(]*(\d{1,9})?", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?;](?:\s|$)|\n\s*\n")


def _float(v: Value) -> float:
    try:
        return v.z.real if isinstance(v, Approx) else float(v)
    except OverflowError:  # too large for a float: no tolerance applies
        return math.inf


def _places(text: str) -> int:
    return max((len(m) for m in _PLACES.findall(text)), default=0)


def _division_with_remainder(eq: Equation, after: str) -> bool | None:
    """None when the left side is not one division of whole numbers by an integer right side;
    else whether the quotient (and a remainder stated right after it) is right."""
    m = _DIVISION.fullmatch(eq.left_text)
    right = eq.right
    if m is None or not isinstance(right, Fraction) or right.denominator != 1:
        return None
    a, b = (int(m.group(1)), int(m.group(2))) if m.group(1) else (int(m.group(3)), int(m.group(4)))
    if b == 0 or a // b != right:
        return False
    stated = _REMAINDER.match(after[:60])
    return stated is None or stated.group(1) is None or int(stated.group(1)) == a - b * int(right)


def _sentence(eq: Equation, text: str) -> str:
    """The words of the sentence the equation stands in, either side of it."""
    before = text[max(0, eq.start - 120) : eq.start]
    cut = list(_SENTENCE_END.finditer(before))
    before = before[cut[-1].end() :] if cut else before
    after = text[eq.end : eq.end + 120]
    stop = _SENTENCE_END.search(after)
    return before + " \n " + (after[: stop.start() + 1] if stop else after)


def _modular(eq: Equation, sentence: str) -> bool | None:
    """None when the sentence names no modulus; else whether the sides agree modulo it (a
    modulus without a number we can read: they may)."""
    m = _MODULUS.search(sentence)
    if m is None:
        return None
    if m.group(1) is None:
        return True
    modulus, left, right = int(m.group(1)), eq.left, eq.right
    if modulus == 0 or not all(isinstance(v, Fraction) and v.denominator == 1 for v in (left, right)):
        return True
    return (left - right) % modulus == 0  # type: ignore[operator]


def holds(eq: Equation, text: str) -> bool:
    """Whether the equation may be read as right (see the module doc); `text` is the step."""
    if values_match(eq.left, eq.right) is not False:
        return True
    if eq.right_head is not None and values_match(eq.left, eq.right_head) is not False:
        return True
    diff = abs(_float(eq.left) - _float(eq.right))
    for side in (eq.right_text, eq.left_text):  # a bare decimal, rounded or cut to its places
        places = _places(side) if _BARE_DECIMAL.fullmatch(side) else 0
        if places and diff < 10.0**-places:
            return True
    left_places = _places(eq.left_text)
    if left_places >= 3 and diff <= 10.0 ** (1 - left_places) * max(1.0, abs(_float(eq.right))):
        return True
    if _division_with_remainder(eq, text[eq.end :]):
        return True
    return bool(_modular(eq, _sentence(eq, text)))


def rejected(eq: Equation, text: str) -> bool:
    """The sentence the equation stands in questions or denies it, or reads it in another base."""
    return _REJECTED.search(_sentence(eq, text)) is not None


def is_false(eq: Equation, text: str) -> bool:
    return not holds(eq, text) and not rejected(eq, text)
