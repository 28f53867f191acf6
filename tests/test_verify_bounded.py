"""Every in-process verifier path is linear and capped: degenerate outputs up to 1 MB, each call
within 50 ms of CPU on this machine (sympy runs in the killable pool, never here)."""

from __future__ import annotations

import random
import time

import pytest

from apsgen.verify.compare import compare_cheap
from apsgen.verify.extract import MAX_SOLUTION_CHARS, extract_answer, too_long
from apsgen.verify.guard import refusal_reason
from apsgen.verify.normalize import normalize

MB = 1_000_000


def degenerate(kind: str, size: int, rng: random.Random) -> str:
    unit = {
        "unclosed_boxed": "\\boxed{",
        "boxed_flood": "\\boxed{1}",
        "nested_braces": "{",
        "closing_braces": "}",
        "digits": "9",
        "deep_frac": "\\frac{1}{",
        "dollars": "$",
        "paren_math": "\\(",
        "answer_is": "The answer is ",
        "final_answer": "Final Answer: ",
        "hashes": "#### ",
        "boxed_words": "\\boxed 7 ",
        "backslashes": "\\",
        "mixed": "",
    }[kind]
    if kind == "mixed":
        pieces = ["\\boxed{", "}", "{", "$", "\\frac{", "The answer is 3. ", "\\(", "12,", " "]
        out: list[str] = []
        n = 0
        while n < size:
            p = rng.choice(pieces)
            out.append(p)
            n += len(p)
        return "".join(out)
    return unit * (size // len(unit) + 1)


KINDS = ["unclosed_boxed", "boxed_flood", "nested_braces", "closing_braces", "digits", "deep_frac", "dollars",
         "paren_math", "answer_is", "final_answer", "hashes", "boxed_words", "backslashes", "mixed"]


def cpu_ms(fn, *args) -> float:  # type: ignore[no-untyped-def]
    """Best of three, in CPU time: a loaded machine must not fail a linear path."""
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        fn(*args)
        best = min(best, time.process_time() - t0)
    return best * 1000


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [10_000, 250_000, MB])
def test_in_process_paths_are_bounded(kind: str, size: int) -> None:
    text = degenerate(kind, size, random.Random(size))
    assert cpu_ms(extract_answer, text) < 50
    assert cpu_ms(extract_answer, text + " \\boxed{5}") < 50
    answer = extract_answer(text[-50_000:] + " so \\boxed{" + text[:3000] + "}")
    for candidate in (answer or "", text[:3000], text):
        assert cpu_ms(normalize, candidate) < 50
        assert cpu_ms(refusal_reason, candidate) < 50
        assert cpu_ms(compare_cheap, "5", normalize(candidate)) < 50


def test_a_too_long_solution_is_no_answer_and_says_why() -> None:
    text = "x" * (MAX_SOLUTION_CHARS + 1) + " \\boxed{5}"
    assert extract_answer(text) is None
    assert "over the" in (too_long(text) or "")
    assert extract_answer("x" * 1000 + " \\boxed{5}") == "5"


def test_the_symbolic_layer_is_a_runtime_dependency() -> None:
    """`pip install apsgen` (no extras) must bring what the symbolic worker imports."""
    from importlib.metadata import requires

    base = [r for r in requires("apsgen") or [] if "extra ==" not in r]
    names = {r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].strip().lower().replace("_", "-") for r in base}
    assert {"sympy", "latex2sympy2-extended"} <= names
    import apsgen.verify.symbolic as symbolic  # imports latex2sympy2_extended at module level

    assert symbolic.latex2sympy is not None
