"""Evaluate an `expr` AST exactly (Fractions) where possible, else as a complex float that
carries a bound on its accumulated rounding error.

The error bound is what makes a float comparison trustworthy in both directions: two values
closer than their bounds are taken as equal (`\\sqrt{2}^2 - 2` vs `0`), two values further
apart than a generous multiple of them are different, and anything in between is left to
sympy. Exact rationals never use a tolerance, so `1/2^{99}` and `1/2^{98}` stay distinct.
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Union

from apsgen.verify.expr import Node, Unsupported
from apsgen.verify.guard import MAX_FACTORIAL  # one bound for both engines

EPS = 2.0**-50  # a little looser than double rounding, to absorb libm's last-bit errors
MAX_EXACT_BITS = 20_000
MAX_BINOM = 1_000
_MAX_LOG_MAGNITUDE = 600.0  # |values| up to e^600, far from float overflow


class Undefined(ValueError):
    """The expression has no value here (division by zero, log of zero)."""


@dataclass(frozen=True)
class Approx:
    z: complex
    err: float  # bound on |true value - z|


Value = Union[Fraction, Approx]


def _approx(v: Value) -> Approx:
    if isinstance(v, Approx):
        return v
    try:
        f = float(v)
    except OverflowError as exc:
        raise Unsupported("rational too large for a float") from exc
    return Approx(complex(f), abs(f) * EPS)


def _checked(z: complex, err: float) -> Approx:
    if not (cmath.isfinite(z) and math.isfinite(err)):
        raise Unsupported("float overflow")
    if abs(z) > math.exp(_MAX_LOG_MAGNITUDE):
        raise Unsupported("value too large")
    return Approx(z, err + abs(z) * EPS)


def _bits(q: Fraction) -> int:
    return max(q.numerator.bit_length(), q.denominator.bit_length())


def _exact_root(q: Fraction, n: int) -> Fraction | None:
    """q^(1/n) when it is rational (and real), else None."""
    if q < 0:
        if n % 2 == 0:
            return None
        root = _exact_root(-q, n)
        return None if root is None else -root
    num = _integer_root(q.numerator, n)
    den = _integer_root(q.denominator, n)
    if num is None or den is None:
        return None
    return Fraction(num, den)


def _integer_root(k: int, n: int) -> int | None:
    if k < 2:
        return k
    guess = round(math.exp(math.log(k) / n)) if k.bit_length() < 1000 else None
    if guess is None:
        return None
    for candidate in (guess - 1, guess, guess + 1):
        if candidate >= 0 and candidate**n == k:
            return candidate
    return None


def evaluate(node: Node, env: dict[str, Fraction]) -> Value:
    kind = node[0]
    if kind == "num":
        return Fraction(node[1])
    if kind == "var":
        try:
            return env[node[1]]
        except KeyError as exc:
            raise Unsupported(f"unbound {node[1]}") from exc
    if kind == "const":
        if node[1] == "i":
            return Approx(1j, 0.0)
        return Approx(complex(math.pi if node[1] == "pi" else math.e), EPS)
    if kind == "neg":
        v = evaluate(node[1], env)
        return -v if isinstance(v, Fraction) else Approx(-v.z, v.err)
    if kind in ("add", "sub", "mul", "div"):
        return arith(kind, evaluate(node[1], env), evaluate(node[2], env))
    if kind == "pow":
        return _power(evaluate(node[1], env), evaluate(node[2], env))
    if kind == "root":
        index = evaluate(node[2], env)
        if not isinstance(index, Fraction) or index.denominator != 1 or not 2 <= index <= 64:
            raise Unsupported("root index")
        return _power(evaluate(node[1], env), Fraction(1, int(index)))
    if kind == "func":
        return _function(node[1], _approx(evaluate(node[2], env)))
    if kind == "log":
        base = _approx(evaluate(node[1], env))
        return arith("div", _function("ln", _approx(evaluate(node[2], env))), _function("ln", base))
    if kind == "fact":
        v = evaluate(node[1], env)
        if not isinstance(v, Fraction) or v.denominator != 1 or not 0 <= v <= MAX_FACTORIAL:
            raise Unsupported("factorial argument")
        return Fraction(math.factorial(int(v)))
    if kind == "binom":
        n, k = evaluate(node[1], env), evaluate(node[2], env)
        for v in (n, k):
            if not isinstance(v, Fraction) or v.denominator != 1 or not 0 <= v <= MAX_BINOM:
                raise Unsupported("binomial argument")
        return Fraction(math.comb(int(n), int(k)))
    raise Unsupported(f"node {kind}")


def arith(kind: str, a: Value, b: Value) -> Value:
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        if kind == "add":
            return a + b
        if kind == "sub":
            return a - b
        if kind == "mul":
            result = a * b
        else:
            if b == 0:
                raise Undefined("division by zero")
            result = a / b
        if _bits(result) > MAX_EXACT_BITS:
            return _approx(result)
        return result
    x, y = _approx(a), _approx(b)
    if kind == "add":
        return _checked(x.z + y.z, x.err + y.err)
    if kind == "sub":
        return _checked(x.z - y.z, x.err + y.err)
    if kind == "mul":
        return _checked(x.z * y.z, abs(x.z) * y.err + abs(y.z) * x.err + x.err * y.err)
    if abs(y.z) <= 2 * y.err:
        raise Undefined("division by (nearly) zero")
    lower = abs(y.z) - y.err
    return _checked(x.z / y.z, (x.err * abs(y.z) + abs(x.z) * y.err) / (abs(y.z) * lower))


def _power(base: Value, exponent: Value) -> Value:
    if isinstance(base, Fraction) and isinstance(exponent, Fraction):
        if exponent.denominator == 1:
            n = exponent.numerator
            if base == 0:
                if n < 0:
                    raise Undefined("zero to a negative power")
                return Fraction(1) if n == 0 else Fraction(0)
            if abs(n) * _bits(base) <= MAX_EXACT_BITS:
                return base**n
        elif exponent.denominator <= 64:
            root = _exact_root(base, exponent.denominator)
            if root is not None:
                return _power(root, Fraction(exponent.numerator))
            if base < 0 and exponent.denominator % 2 == 1:
                # MATH reads the odd root of a negative number as real: cbrt(-2) = -cbrt(2).
                magnitude = _power(-base, exponent)
                sign = -1 if exponent.numerator % 2 else 1
                m = _approx(magnitude)
                return Approx(sign * m.z, m.err)
    x, y = _approx(base), _approx(exponent)
    if x.z == 0:
        if y.z.real > 0:
            return Approx(0j, 0.0)
        raise Undefined("zero to a non-positive power")
    if abs(x.z) <= 2 * x.err:
        raise Unsupported("base indistinguishable from zero")
    log_base = cmath.log(x.z)
    exponent_log = y.z * log_base
    if exponent_log.real > _MAX_LOG_MAGNITUDE or exponent_log.real < -_MAX_LOG_MAGNITUDE:
        raise Unsupported("power out of float range")
    z = cmath.exp(exponent_log)
    # d(x^y) = y x^(y-1) dx + x^y ln(x) dy
    err = abs(z) * (abs(y.z) * x.err / (abs(x.z) - x.err) + abs(log_base) * y.err) * 1.01
    return _checked(z, err)


_FUNCS = {
    "sin": cmath.sin, "cos": cmath.cos, "tan": cmath.tan, "arcsin": cmath.asin,
    "arccos": cmath.acos, "arctan": cmath.atan, "sinh": cmath.sinh, "cosh": cmath.cosh,
    "tanh": cmath.tanh, "ln": cmath.log, "log": cmath.log, "exp": cmath.exp,
}


def _function(name: str, x: Approx) -> Approx:
    if name in ("cot", "sec", "csc"):
        inner = {"cot": "tan", "sec": "cos", "csc": "sin"}[name]
        value = _function(inner, x)
        result = arith("div", Fraction(1), value)
        assert isinstance(result, Approx)
        return result
    fn = _FUNCS[name]
    if name in ("ln", "log") and abs(x.z) <= 2 * x.err:
        raise Undefined("log of zero")
    if abs(x.z.imag) > 700 or abs(x.z.real) > 700:
        raise Unsupported("function argument out of range")
    z = fn(x.z)
    # Slope by a finite difference: a coarse but safe bound for these smooth functions.
    h = 1e-6 * max(1.0, abs(x.z))
    try:
        slope = abs(fn(x.z + h) - z) / h
    except (ValueError, OverflowError, ZeroDivisionError):
        raise Undefined(f"{name} near a singularity") from None
    return _checked(z, 2 * slope * x.err + 1e-15 * (abs(z) + 1))


def values_match(a: Value, b: Value) -> bool | None:
    """True/False when the values are surely (within rounding) equal/different, else None."""
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a == b
    x, y = _approx(a), _approx(b)
    diff = abs(x.z - y.z)
    tolerance = x.err + y.err
    scale = max(abs(x.z), abs(y.z))
    if diff <= 4 * tolerance:
        return True
    if diff > 1e3 * tolerance + 1e-12 * scale:
        return False
    return None
