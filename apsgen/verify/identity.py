"""Random-point identity testing, once for both comparison layers (the in-process evaluator in
`compare`, sympy in `symbolic`): two different expressions agree at a random point with
probability zero, so agreeing at a few seeded points is taken as equality, and two equations are
one equation when one side's difference is a constant nonzero multiple of the other's.

The points are exact rationals seeded by the variables' names, so the same pair always gets the
same verdict, on any machine, in either layer.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

POINTS = 3  # points two expressions must agree at
MAX_TRIES = 8  # points tried before giving up when some land on a singularity


def identity_points(variables: Sequence[str], tries: int = MAX_TRIES) -> list[dict[str, Fraction]]:
    """`tries` seeded points, each variable a rational in about [0.5, 19] (away from 0 and 1,
    where many distinct expressions agree). No variables: one empty point."""
    if not variables:
        return [{}]
    rng = random.Random(zlib.crc32(",".join(sorted(variables)).encode()))
    return [
        {v: Fraction(rng.randint(101, 997), rng.randint(53, 199)) for v in sorted(variables)}
        for _ in range(tries)
    ]


def points_needed(variables: Sequence[str]) -> int:
    """A constant is checked once; an expression at POINTS points."""
    return POINTS if variables else 1


class Proportional:
    """Fed the values of f and g point by point, whether f = c * g for one constant c != 0: then
    `f = 0` and `g = 0` are the same equation (`2y = 4x` and `y = 2x`).

    Each call answers for the points so far: True (still proportional), False (certainly not), or
    None (this point cannot tell). The number system is the caller's: `is_zero`, `divide` (None when
    it cannot) and `same` may themselves answer None.
    """

    def __init__(
        self,
        is_zero: Callable[[Any], bool | None],
        divide: Callable[[Any, Any], Any | None],
        same: Callable[[Any, Any], bool | None],
    ):
        self.is_zero, self.divide, self.same = is_zero, divide, same
        self.ratio: Any = None

    def __call__(self, f: Any, g: Any) -> bool | None:
        if self.is_zero(g) is True:
            return self.is_zero(f)
        ratio = self.divide(f, g)
        if ratio is None:
            return None
        if self.is_zero(ratio) is True:
            return False
        if self.ratio is None:
            self.ratio = ratio
            return True
        return self.same(ratio, self.ratio)
