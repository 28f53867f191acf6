"""Symbolic equivalence with sympy; runs only inside verify worker processes.

LaTeX is turned into sympy objects by `latex2sympy2_extended`, an ANTLR parser that builds
expressions node by node and never evaluates text as Python (no `sympify`/`parse_expr` on
model output). Equality of values is decided exactly where sympy can (rationals), otherwise by
high-precision evaluation: at random points for expressions with free symbols.
"""

from __future__ import annotations

import logging

import sympy
from latex2sympy2_extended import latex2sympy
from latex2sympy2_extended.latex2sympy2 import ConversionConfig
from sympy.core.relational import Relational
from sympy.logic.boolalg import BooleanFunction

from apsgen.verify.guard import refusal_reason
from apsgen.verify.identity import Proportional, identity_points, points_needed

try:  # loaded here, before the fork server forks workers, so no check pays for the import
    import math_verify  # noqa: F401
except ImportError:  # pragma: no cover
    math_verify = None
# It warns on every call that its own timeouts are off: here the pool's hard kill is the timeout.
logging.getLogger("math_verify").setLevel(logging.ERROR)

logger = logging.getLogger(__name__)

_DIGITS = 40
# Relative, never absolute: 1/2^99 and 1/2^98 differ by a factor of two, not by 2^-99.
_RELATIVE_TOLERANCE = sympy.Float(10) ** -25
_ZERO = sympy.Float(10) ** -(_DIGITS - 5)
_IMAGINARY = sympy.Symbol("i")
# Symbols keep their case: `R` and `r` are two lengths (latex2sympy lowercases by default).
_CONVERSION = ConversionConfig(lowercase_symbols=False)


def parse(text: str) -> sympy.Basic | None:
    """The sympy object for one normalised answer, or None when it cannot be parsed."""
    if refusal_reason(text) is not None:
        return None
    try:
        expr = latex2sympy(text, normalization_config=None, conversion_config=_CONVERSION)
    except Exception:  # the grammar rejects it: not a math expression
        return None
    if isinstance(expr, sympy.Basic) and expr.has(_IMAGINARY):
        expr = expr.subs(_IMAGINARY, sympy.I)
    return expr


def equivalent_symbolic(gold: str, pred: str, raw: tuple[str, str] | None = None) -> bool:
    """True when the two normalised answers denote the same mathematical object.

    When both sides parse (latex2sympy2_extended, the parser math-verify itself builds on) into
    objects of one kind (two expressions, two tuples of one length, two sets, two intervals, two
    equations), apsgen's exact comparison decides: it is strict where math-verify rounds
    (`1/3^{60}` vs `1/3^{61}`) and case-sensitive where math-verify is not (`3R^2` vs `3r^2`).
    Every other case is math-verify's (its LaTeX extraction, never its `parse_expr` path): a side
    apsgen cannot read, or two kinds (an equation against a value, a tuple against a list), on
    the raw answers `raw` and then on the normalised ones. So a form apsgen does not understand
    becomes math-verify's verdict, never a silent "wrong"."""
    a, b = parse(gold), parse(pred)
    if a is not None and b is not None:
        if objects_equal(a, b):
            return True
        if _kind(a) is not None and _kind(a) == _kind(b):
            return False
    gold_raw, pred_raw = raw or (gold, pred)
    if refusal_reason(gold_raw) is not None or refusal_reason(pred_raw) is not None:
        return False  # what the guard refuses reaches no parser at all
    if math_verify_equal(gold_raw, pred_raw):
        return True
    return (gold_raw, pred_raw) != (gold, pred) and math_verify_equal(gold, pred)


def _kind(x: object) -> tuple[str, int] | None:
    """The structural kind of a parsed answer; two answers of one kind are compared by apsgen."""
    if isinstance(x, sympy.MatrixBase):
        return ("matrix", len(x))
    if isinstance(x, (sympy.Tuple, tuple)):
        return ("tuple", len(x))
    if isinstance(x, sympy.FiniteSet):
        return ("set", 0)
    if isinstance(x, sympy.Interval):
        return ("interval", 0)
    if isinstance(x, sympy.Eq):
        return ("equation", 0)
    if isinstance(x, sympy.Expr):
        return ("expression", 0)
    return None  # inequalities, unions and other sets: math-verify confirms a rejection


_MV_CONFIG: list | None = None


def math_verify_equal(gold: str, pred: str) -> bool:
    """math-verify's verdict on two answers, inside this worker: LaTeX extraction only (its
    expression extractor hands text to sympy's `parse_expr`, which evaluates Python), and its own
    signal timeouts off, so only the pool's hard kill bounds the time."""
    global _MV_CONFIG
    try:
        from math_verify import LatexExtractionConfig
        from math_verify import parse as mv_parse
        from math_verify import verify as mv_verify
    except ImportError:  # pragma: no cover - a base install has it (pyproject)
        return False
    if _MV_CONFIG is None:
        _MV_CONFIG = [LatexExtractionConfig(boxed_match_priority=0)]

    def wrapped(text: str) -> str:
        return text if any(m in text for m in ("$", "\\(", "\\[", "\\boxed")) else f"${text}$"

    gold_parsed = mv_parse(wrapped(gold), extraction_config=_MV_CONFIG, parsing_timeout=None)
    pred_parsed = mv_parse(wrapped(pred), extraction_config=_MV_CONFIG, parsing_timeout=None)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(mv_verify(gold_parsed, pred_parsed, timeout_seconds=None))


def objects_equal(a: object, b: object) -> bool:
    """Structural comparison: matrices, tuples, sets, intervals, relations, then values."""
    if isinstance(a, sympy.MatrixBase) or isinstance(b, sympy.MatrixBase):
        if not (isinstance(a, sympy.MatrixBase) and isinstance(b, sympy.MatrixBase)):
            return False
        return a.shape == b.shape and all(values_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (sympy.Tuple, tuple)) or isinstance(b, (sympy.Tuple, tuple)):
        a, b = _as_interval_if_pair(a, b), _as_interval_if_pair(b, a)
        if isinstance(a, (sympy.Tuple, tuple)) and isinstance(b, (sympy.Tuple, tuple)):
            return len(a) == len(b) and all(objects_equal(x, y) for x, y in zip(a, b))
        if isinstance(a, (sympy.Tuple, tuple)) or isinstance(b, (sympy.Tuple, tuple)):
            return False
    if isinstance(a, sympy.FiniteSet) and isinstance(b, sympy.FiniteSet):
        return _same_elements(list(a.args), list(b.args))
    if isinstance(a, sympy.Interval) and isinstance(b, sympy.Interval):
        return (
            a.left_open == b.left_open
            and a.right_open == b.right_open
            and values_equal(a.start, b.start)
            and values_equal(a.end, b.end)
        )
    if isinstance(a, sympy.Union) and isinstance(b, sympy.Union):
        return len(a.args) == len(b.args) and _same_elements(list(a.args), list(b.args))
    if isinstance(a, (Relational, BooleanFunction)) or isinstance(b, (Relational, BooleanFunction)):
        return _relations_equal(a, b)
    if isinstance(a, sympy.Set) or isinstance(b, sympy.Set):
        if isinstance(a, sympy.Set) and isinstance(b, sympy.Set):
            return bool(a == b)
        return False
    if isinstance(a, sympy.Expr) and isinstance(b, sympy.Expr):
        return values_equal(a, b)
    return False


def _as_interval_if_pair(x: object, other: object) -> object:
    """MATH writes open intervals and points alike as `(a, b)`: read it as the other side does."""
    if isinstance(x, sympy.Tuple) and len(x) == 2 and isinstance(other, sympy.Interval):
        return sympy.Interval.open(x[0], x[1])
    return x


def _same_elements(xs: list, ys: list) -> bool:
    """Order-insensitive comparison of two small collections, each element matched once."""
    if len(xs) != len(ys):
        return False
    unused = list(ys)
    for x in xs:
        for index, y in enumerate(unused):
            if objects_equal(x, y):
                del unused[index]
                break
        else:
            return False
    return True


def _relations_equal(a: object, b: object) -> bool:
    if isinstance(a, sympy.Eq) and isinstance(b, sympy.Eq):
        # Equations are equal when one is a nonzero multiple of the other.
        da, db = a.lhs - a.rhs, b.lhs - b.rhs
        if values_equal(da, db):
            return True
        proportional = Proportional(lambda v: _numbers_close(v, sympy.Integer(0)), lambda f, g: f / g, _numbers_close)
        return _at_points([da, db], lambda values: proportional(*values))
    for x in (a, b):
        if not isinstance(x, (Relational, BooleanFunction, sympy.Set)):
            return False
    set_a, set_b = _solution_set(a), _solution_set(b)
    if set_a is None or set_b is None:
        return bool(a == b)
    return bool(set_a == set_b) or objects_equal(set_a, set_b)


def _solution_set(x: object) -> sympy.Set | None:
    """The real solution set of a univariate inequality (or an interval, as given)."""
    if isinstance(x, sympy.Set):
        return x
    free = x.free_symbols
    if len(free) != 1:
        return None
    try:
        return x.as_set()
    except Exception:
        return None


def values_equal(x: sympy.Basic, y: sympy.Basic) -> bool:
    """Equality of two scalar expressions: exact for numbers, numeric identity test else."""
    if x == y:
        return True
    if not (isinstance(x, sympy.Expr) and isinstance(y, sympy.Expr)):
        return False
    if x.is_Rational and y.is_Rational:
        return False  # distinct exact rationals
    if not (x.free_symbols | y.free_symbols):
        return _numbers_close(x, y)
    return _at_points([x, y], lambda values: _numbers_close(*values))


def _at_points(exprs: list[sympy.Expr], check) -> bool:  # type: ignore[no-untyped-def]
    """`check` of the expressions' values at the identity points (`apsgen.verify.identity`):
    True when it holds at enough points where every expression is defined, False when it fails at
    one or too few points are defined (this layer rejects what it cannot confirm)."""
    symbols = {s.name: s for e in exprs for s in e.free_symbols}
    names = sorted(symbols)
    need, good = points_needed(names), 0
    for point in identity_points(names):
        values = []
        for e in exprs:
            at = {symbols[n]: sympy.Rational(q.numerator, q.denominator) for n, q in point.items()}
            try:
                v = sympy.N(e.xreplace(at), _DIGITS)
            except Exception:
                break  # sympy cannot evaluate it here: try the next point
            if not v.is_number or v.has(sympy.nan, sympy.zoo) or v.is_finite is False:
                break  # a singularity: try the next point
            values.append(v)
        else:
            if check(values) is not True:
                return False
            good += 1
            if good == need:
                return True
    return False


def _numbers_close(x: sympy.Expr, y: sympy.Expr) -> bool:
    try:
        vx, vy = sympy.N(x, _DIGITS), sympy.N(y, _DIGITS)
    except Exception:
        return False
    if not (vx.is_number and vy.is_number):
        return False
    if vx.has(sympy.nan, sympy.zoo) or vy.has(sympy.nan, sympy.zoo):
        return False
    if not (vx.is_finite and vy.is_finite):
        return bool(vx == vy)  # oo - oo is nan and oo <= tol * oo holds: compare directly
    diff = abs(sympy.N(vx - vy, _DIGITS))
    scale = max(abs(vx), abs(vy))
    if scale <= _ZERO:
        return True
    return bool(diff <= _RELATIVE_TOLERANCE * scale)
