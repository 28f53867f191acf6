"""The family table (apsgen/bench/verify_families.py): apsgen at or above math-verify in every family with
more than 5 cases and overall, with no more false positives, and each new policy choice pinned."""

from __future__ import annotations

from collections import defaultdict

import pytest

from apsgen.bench.verify import _run_apsgen, _run_math_verify, apsgen_gold
from apsgen.verify import Outcome, Verifier
from apsgen.bench.verify_families import FAMILIES


@pytest.fixture(scope="module")
def verdicts() -> tuple[list[bool], list[bool]]:
    a, _, _, _ = _run_apsgen([(apsgen_gold(c.gold), c.pred) for c in FAMILIES], solutions=True)
    m, _, _, _ = _run_math_verify([(c.gold, c.pred, True) for c in FAMILIES])
    return a, m


def test_every_family_has_both_answers_and_enough_cases() -> None:
    by_family = defaultdict(list)
    for c in FAMILIES:
        by_family[c.family].append(c.expected)
    assert len(by_family) >= 15
    for family, expected in by_family.items():
        assert len(expected) >= 6, family
        assert True in expected and False in expected, family


def test_apsgen_at_least_math_verify_per_family_and_fewer_false_positives(verdicts) -> None:  # type: ignore[no-untyped-def]
    a, m = verdicts
    right = defaultdict(lambda: [0, 0, 0])
    fp_a = fp_m = 0
    for c, x, y in zip(FAMILIES, a, m):
        right[c.family][0] += x == c.expected
        right[c.family][1] += y == c.expected
        right[c.family][2] += 1
        fp_a += x and not c.expected
        fp_m += y and not c.expected
    for family, (ra, rm, n) in right.items():
        if n > 5:
            assert ra >= rm, (family, ra, rm, n)
    assert sum(v[0] for v in right.values()) >= sum(v[1] for v in right.values())
    assert fp_a <= fp_m


@pytest.mark.parametrize(
    ("gold", "solution", "outcome"),
    [
        ("9", "Putting it together.\n\nAnswer \\[ 9 \\]", Outcome.CORRECT),
        ("9", "We computed $3^2 = 9$ so far, and next", Outcome.NO_ANSWER),  # a block inside the text is working
        ("3, 4", "so $x = \\boxed{3}$ or $x = \\boxed{4}$", Outcome.CORRECT),
        ("4", "first \\boxed{3}, then \\boxed{4}", Outcome.CORRECT),  # one item: the last box only
        ("\\frac{2}{3}", "\\boxed{0.666667}", Outcome.CORRECT),
        ("\\frac{2}{3}", "\\boxed{0.6667}", Outcome.WRONG),
        ("6.02\\times10^{23}", "\\boxed{6.02e23}", Outcome.CORRECT),
        ("12:00", "\\boxed{1:00}", Outcome.WRONG),
        ("\\frac{1}{2^{99}}", "\\boxed{\\frac{1}{2^{98}}}", Outcome.WRONG),
    ],
)
def test_policy_choices(gold: str, solution: str, outcome: Outcome) -> None:
    with Verifier() as v:
        assert v.check_batch([solution], gold)[0].outcome is outcome


def test_trailing_math_can_be_turned_off() -> None:
    with Verifier(trailing_math_answer=False) as v:
        assert v.check_batch(["Answer \\[ 9 \\]"], "9")[0].outcome is Outcome.NO_ANSWER
