"""The verifier's shared parts: one bracket scanner and one identity test serve both layers."""

from __future__ import annotations

import time

import pytest

from apsgen.verify.brackets import closing_braces, deepest, enclosed, matching_brace, split_top_level
from apsgen.verify.compare import compare_equations, compare_scalar
from apsgen.verify.identity import POINTS, identity_points


def test_brackets_read_latex_groups_and_answers_alike() -> None:
    assert matching_brace(r"{a\}b}c", 0) == 5  # an escaped brace is text, not a group
    assert matching_brace("{{a}", 0) is None
    assert closing_braces("{a{b}}", 0) == {0: 5, 2: 4}
    assert split_top_level(r"(1,2),\{3,4\},[5,6]", ",") == ["(1,2)", r"\{3,4\}", "[5,6]"]
    assert split_top_level("x=f(a=b)", "=") == ["x", "f(a=b)"]
    assert enclosed("(1,2]", "(", "]") and not enclosed(r"(1,2)\cup(3,4)", "(", ")")
    assert deepest("((a)[{b}])") == 3 and deepest("") == 0


def test_bracket_scans_are_linear_on_megabytes_of_junk() -> None:
    junk = "{(" * 500_000 + "x" + ")}" * 400_000
    t0 = time.perf_counter()
    assert matching_brace(junk, 0) is None
    assert len(split_top_level(junk, ",")) == 1
    assert deepest(junk) == 1_000_000
    assert not enclosed(junk, "{", "}")
    assert time.perf_counter() - t0 < 5.0


def test_identity_points_are_seeded_by_the_variables_and_avoid_zero_and_one() -> None:
    a, b = identity_points(["y", "x"]), identity_points(["x", "y"])
    assert a == b and len(a) > POINTS
    assert all(v > 0.5 and v != 1 for p in a for v in p.values())
    assert identity_points([]) == [{}]


@pytest.mark.parametrize(
    "gold, pred, same",
    [
        (("y", "2x"), ("2y", "4x"), True),
        (("x+y", "1"), ("2", "2x+2y"), True),
        (("y", "2x"), ("y", "3x"), False),
        (("y", "x^2"), ("y", "x"), False),
    ],
)
def test_both_layers_read_proportional_equations_as_one(gold, pred, same) -> None:  # type: ignore[no-untyped-def]
    from apsgen.verify.symbolic import objects_equal, parse

    fast = compare_equations(gold, pred)
    assert fast is (True if same else None)  # the fast path accepts, never rejects
    a, b = parse(f"{gold[0]}={gold[1]}"), parse(f"{pred[0]}={pred[1]}")
    assert objects_equal(a, b) is same


def test_both_layers_agree_on_identities() -> None:
    from apsgen.verify.symbolic import parse, values_equal

    for gold, pred, same in [(r"\frac{x^2-1}{x-1}", "x+1", True), ("(a+b)^2", "a^2+2ab+b^2", True),
                             ("(a+b)^2", "a^2+b^2", False)]:
        assert compare_scalar(gold, pred) is (True if same else None)
        assert values_equal(parse(gold), parse(pred)) is same
