"""Read a normalised answer as an exact rational number when it is written as one.

This is the hot path's first comparison after string equality: integers, decimals and simple
fractions are compared as `Fraction`s, so `0.5 == \\frac{1}{2}` and `0.333 != \\frac{1}{3}`.
"""

from __future__ import annotations

import re
from fractions import Fraction

# Python refuses int() on more than 4300 digits by default (quadratic conversion); such numbers
# are compared as strings only.
MAX_DIGITS = 2_000

_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DECIMAL = re.compile(rf"([+-]?){_NUM}")
_SIMPLE_FRACTION = re.compile(
    rf"([+-]?)(?:\\frac\{{({_NUM})\}}\{{({_NUM})\}}|({_NUM})/({_NUM}))"
)
_MIXED_NUMBER = re.compile(rf"([+-]?)(\d+)\\frac\{{(\d+)\}}\{{(\d+)\}}")
_REPEATING = re.compile(r"([+-]?)(\d*)\.(\d*)\\overline\{(\d{1,20})\}")
_E_NOTATION = re.compile(rf"([+-]?{_NUM})[eE]([+-]?\d{{1,3}})")
_SCIENTIFIC = re.compile(rf"([+-]?{_NUM})(?:\\times|\\cdot)\s*10\^\{{?([+-]?\d{{1,3}})\}}?")


def _signed(sign: str, value: Fraction) -> Fraction:
    return -value if sign == "-" else value


def parse_rational(s: str) -> Fraction | None:
    """The exact value of `s` if it is a plain number, fraction, mixed number or `a\\times10^k`."""
    if not s or len(s) > MAX_DIGITS or not (s[0].isdigit() or s[0] in "+-.\\"):
        return None
    if _DECIMAL.fullmatch(s):
        return Fraction(s)
    match = _SIMPLE_FRACTION.fullmatch(s)
    if match:
        sign, a, b, c, d = match.groups()
        num, den = Fraction(a or c), Fraction(b or d)
        return None if den == 0 else _signed(sign, num / den)
    match = _MIXED_NUMBER.fullmatch(s)
    if match:
        sign, whole, a, b = match.groups()
        if int(b) == 0:
            return None
        return _signed(sign, int(whole) + Fraction(int(a), int(b)))
    match = _REPEATING.fullmatch(s)
    if match:
        # 0.1\overline{6} = 0.1 + 0.0666...: the repeating block over 9...9, shifted.
        sign, whole, fixed, block = match.groups()
        value = Fraction(int(whole or "0")) + (Fraction(int(fixed), 10 ** len(fixed)) if fixed else 0)
        value += Fraction(int(block), (10 ** len(block) - 1) * 10 ** len(fixed))
        return _signed(sign, value)
    match = _E_NOTATION.fullmatch(s)
    if match:  # `6.02e23`, as calculators and code print it
        return Fraction(match.group(1)) * Fraction(10) ** int(match.group(2))
    match = _SCIENTIFIC.fullmatch(s)
    if match:
        return Fraction(match.group(1)) * Fraction(10) ** int(match.group(2))
    return None
