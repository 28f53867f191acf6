"""Cheap in-process comparison of two normalised answers; None means "ask the symbolic check".

It rejects only what is certain without a parser (two plain numbers, clock times, words, a number
against a tuple); an expression it evaluates can be accepted here but never rejected. Everything here is pure Python over short strings and runs on the caller's thread (an asyncio
loop, even), so it is bounded: no sympy, exact arithmetic only up to a size limit, floats with
tracked rounding error otherwise. Expressions with variables are compared at a few seeded
random rational points, so polynomial and rational identities are decided exactly.
"""

from __future__ import annotations

import re
from fractions import Fraction

from apsgen.verify.brackets import split_top_level
from apsgen.verify.evaluate import Undefined, Value, arith, evaluate, values_match
from apsgen.verify.expr import Node, Unsupported, free_variables, parse_expr_latex
from apsgen.verify.identity import Proportional, identity_points, points_needed
from apsgen.verify.numeric import parse_rational
from apsgen.verify.structure import Shape, shape_of

_WORD = re.compile(r"[A-Za-z][A-Za-z ]*")
# No answer to a math problem is this long; past it only exact string equality counts, and the
# caller's thread never scans megabytes of junk.
MAX_ANSWER_CHARS = 2_000


def compare_cheap(gold: str, pred: str) -> bool | None:
    """True/False when the normalised pair is decided without sympy, else None."""
    if gold == pred:
        return True
    if not pred or not gold or len(pred) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
        return False
    gold_time, pred_time = _TIME.fullmatch(gold), _TIME.fullmatch(pred)
    if gold_time or pred_time:  # `11:00` is a clock time, not the ratio 11/0
        if gold_time and pred_time:
            return tuple(map(int, gold_time.groups("0"))) == tuple(map(int, pred_time.groups("0")))
        return False
    gold_value = parse_rational(gold)
    pred_value = parse_rational(pred)
    if gold_value is not None and pred_value is None:
        pred_value = _decimal_comma(pred)
    elif pred_value is None and gold_value is None:
        pass
    elif gold_value is None:
        gold_value = _decimal_comma(gold)
    if gold_value is not None and pred_value is not None:
        return gold_value == pred_value or rounded_match(gold_value, pred, pred_value)
    gold_word = len(gold) > 1 and _WORD.fullmatch(gold) is not None
    pred_word = len(pred) > 1 and _WORD.fullmatch(pred) is not None
    if gold_word or pred_word:
        # Words (names, directions, "even") are compared as words, never as products of
        # one-letter variables.
        return gold_word and pred_word and gold.casefold() == pred.casefold()
    chain = _compare_equation_value(gold, pred)
    if chain is not _NOT_A_CHAIN:
        return chain
    return compare_shapes(shape_of(gold), shape_of(pred), pred)


_NOT_A_CHAIN = object()
# The left side of a gold answer written as a definition: `f(x)=x+22`, `y=2x+3`, `g(n)=n^2`.
_DEFINED_NAME = re.compile(r"\\?[a-zA-Z]+(?:_\{?\w+\}?)?(?:\([^()=]*\))?")


def _compare_equation_value(gold: str, pred: str) -> bool | None | object:
    """An answer written as a chain of equalities whose last side is the value: `4*8=32`,
    `|r-s|=16`, `E(2020,1993)=76`, `\\sin\\theta=\\frac{1}{2}` against a gold that is no
    equation; and a gold that defines a name (`f(x)=x+22`) against its bare right side."""
    gold_sides = split_top_level(gold, "=") if "=" in gold else [gold]
    pred_sides = split_top_level(pred, "=") if "=" in pred else [pred]
    if len(gold_sides) >= 3 and gold_sides[-1]:
        return compare_cheap(gold_sides[-1], pred_sides[-1])  # `z = 1 + 1 = 2`: the value is 2
    if len(gold_sides) == 1 and len(pred_sides) >= 2 and pred_sides[-1]:
        return compare_cheap(gold, pred_sides[-1])
    if len(gold_sides) == 2 and len(pred_sides) == 1 and gold_sides[1] and _DEFINED_NAME.fullmatch(gold_sides[0]):
        return compare_cheap(gold_sides[1], pred)
    return _NOT_A_CHAIN


PERCENT = re.compile(r"\\?%|\bpercent\b")


def percent_match(gold_raw: str, pred_raw: str, gold: str, pred: str) -> bool:
    """`62.5\\%` and `0.625` are one quantity: a percentage on one side only, equal to the other
    side's value times 100 (both sides plain numbers once normalised)."""
    gold_pct, pred_pct = bool(PERCENT.search(gold_raw)), bool(PERCENT.search(pred_raw))
    if gold_pct == pred_pct:
        return False
    gold_value, pred_value = parse_rational(gold), parse_rational(pred)
    if gold_value is None or pred_value is None:
        return False
    return gold_value == pred_value * 100 if gold_pct else gold_value * 100 == pred_value


_DECIMAL_COMMA = re.compile(r"-?\d+,\d+")


def _decimal_comma(text: str) -> Fraction | None:
    """`1000,99` or `0,111` against a single number: a decimal comma (a list of two numbers can
    never equal one number, so nothing else is lost by this reading; thousands were already read
    as thousands by normalising)."""
    if _DECIMAL_COMMA.fullmatch(text) is None:
        return None
    return parse_rational(text.replace(",", "."))


_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_PLAIN_DECIMAL = re.compile(r"[+-]?\d*\.(\d+)")
# A decimal stands for an exact answer only when written this precisely (math-verify rounds at
# six digits too); `0.67` for 2/3 is a different, wrong answer.
MIN_ROUNDED_DIGITS = 6


def rounded_match(gold: Fraction, pred: str, value: Fraction) -> bool:
    """`0.714286` for 5/7: a decimal with at least MIN_ROUNDED_DIGITS significant digits equal to
    the gold value correctly rounded to its decimal places."""
    m = _PLAIN_DECIMAL.fullmatch(pred)
    if m is None:
        return False
    places = len(m.group(1))
    significant = pred.lstrip("+-").replace(".", "").lstrip("0")
    if len(significant) < MIN_ROUNDED_DIGITS or places > 40:
        return False
    scale = 10**places
    scaled = gold * scale
    nearest = (scaled.numerator * 2 + scaled.denominator) // (2 * scaled.denominator)  # half up
    return Fraction(nearest, scale) == value


def _all(results: list[bool | None]) -> bool | None:
    if any(r is False for r in results):
        return False
    return True if all(r is True for r in results) else None


def compare_shapes(a: Shape, b: Shape, pred: str = "") -> bool | None:
    if a.kind == "set" and len(a.items) == 1:
        a = shape_of(a.items[0])
    if b.kind == "set" and len(b.items) == 1:
        b = shape_of(b.items[0])
    if a.kind != b.kind:
        pair = {a.kind, b.kind}
        if a.kind == "set" and b.kind == "seq" and b.brackets == "()":
            # `(1000, 10)` for the gold solution list `10^3, 10`: a tuple read as the list it
            # lists (never the other way: a gold point `(3, 1)` is no set `{1, 3}`).
            return _match_unordered(list(a.items), list(b.items), compare_cheap)
        if a.kind == "seq" and a.brackets == "()" and b.kind == "set" and not pred.startswith("\\{"):
            # A gold point `(1, 3)` against the bare list `1, 3` (or `{1,3}`, braces that only
            # group): the same numbers in the same order.
            return compare_shapes(a, Shape("seq", b.items, "()")) if len(a.items) == len(b.items) else False
        if pair == {"seq", "set"}:
            return False
        scalar = a if a.kind == "scalar" else b if b.kind == "scalar" else None
        if scalar is not None and parse_rational(scalar.items[0]) is not None and pair & {"seq", "set", "matrix", "union"}:
            return False  # a number is no tuple, list or matrix
        return None  # `x > 3` vs `(3, \infty)`, an equation vs a value: the symbolic layer decides
    if a.kind == "scalar":
        return compare_scalar(a.items[0], b.items[0])
    if a.kind == "seq":
        if a.brackets != b.brackets or len(a.items) != len(b.items):
            return False
        return _all([compare_cheap(x, y) for x, y in zip(a.items, b.items)])
    if a.kind == "matrix":
        if len(a.items) != len(b.items) or any(
            len(ra) != len(rb) for ra, rb in zip(a.items, b.items)
        ):
            return False
        return _all(
            [compare_cheap(x, y) for ra, rb in zip(a.items, b.items) for x, y in zip(ra, rb)]
        )
    if a.kind == "set":
        return _match_unordered(
            list(a.items), list(b.items), lambda x, y: compare_cheap(x, y)
        )
    if a.kind == "union":
        return _match_unordered(list(a.items), list(b.items), compare_shapes)
    if a.kind == "equation":
        return compare_equations(a.items, b.items)
    return None


def _match_unordered(xs: list, ys: list, equal) -> bool | None:  # type: ignore[no-untyped-def]
    """Order-insensitive comparison, three-valued: equality of answers is transitive, so a
    greedy match on sure-equal pairs finds a perfect matching whenever one exists."""
    if len(xs) != len(ys):
        return False
    table = [[equal(x, y) for y in ys] for x in xs]
    if any(all(cell is False for cell in row) for row in table):
        return False
    used: set[int] = set()
    for row in table:
        match = next((j for j, cell in enumerate(row) if cell is True and j not in used), None)
        if match is None:
            return None
        used.add(match)
    return True


def _parse(text: str) -> Node | None:
    try:
        return parse_expr_latex(text)
    except (Unsupported, RecursionError):
        return None


def _evaluate_at_points(nodes: list[Node], check) -> bool | None:  # type: ignore[no-untyped-def]
    """Evaluate `nodes` at random points and feed the values to `check` (three-valued)."""
    variables = sorted(set().union(*(free_variables(n) for n in nodes)))
    points, need = identity_points(variables), points_needed(variables)
    verdicts: list[bool | None] = []
    for point in points:
        try:
            values = [evaluate(n, point) for n in nodes]
        except Undefined:
            continue
        except (Unsupported, ZeroDivisionError, OverflowError, ValueError, RecursionError):
            return None
        verdict = check(values)
        if verdict is False:
            return False
        verdicts.append(verdict)
        if len(verdicts) == need:
            break
    if len(verdicts) < need:
        return None
    return True if all(v is True for v in verdicts) else None


_BASE_NUMBER = re.compile(r"\d+_\d+")


def compare_scalar(gold: str, pred: str) -> bool | None:
    if "\\infty" in gold or "\\infty" in pred:
        return False  # the strings differ, and the only infinite answers are +-\infty
    if _BASE_NUMBER.fullmatch(gold) or _BASE_NUMBER.fullmatch(pred):
        return False  # `52_8` is a numeral in base 8: only its exact digits match
    a, b = _parse(gold), _parse(pred)
    if a is None or b is None:
        return None
    return _accept_only(_evaluate_at_points([a, b], lambda values: values_match(values[0], values[1])))


def _accept_only(verdict: bool | None) -> bool | None:
    """This hand-written parser may accept, never reject, an expression: a notation it misreads
    must not become a final "wrong"; the symbolic layer (and math-verify) confirm rejections."""
    return True if verdict is True else None


def compare_equations(gold: tuple, pred: tuple) -> bool | None:
    """Equations are equal when one is a nonzero multiple of the other: `2y=4x` vs `y=2x`."""
    sides = [_parse(s) for s in (*gold, *pred)]
    if any(s is None for s in sides):
        return None
    f = ("sub", sides[0], sides[1])
    g = ("sub", sides[2], sides[3])

    def divide(fv: Value, gv: Value) -> Value | None:
        try:
            return arith("div", fv, gv)
        except (Undefined, Unsupported):
            return None

    proportional = Proportional(lambda v: values_match(v, Fraction(0)), divide, values_match)
    return _accept_only(_evaluate_at_points([f, g], lambda values: proportional(*values)))
