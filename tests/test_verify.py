"""apsgen.verify: extraction, the case table, adversarial input, the pool's timeouts, asyncio."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from apsgen.verify import Outcome, AnswerCheck, Verifier, check, equivalent, extract_answer

from apsgen.bench.verify_cases import ADVERSARIAL, CASES, INJECTIONS

TIMEOUT_S = 1.0  # for adversarial input: short, so that the kill path is what gets tested
# Real checks get the production budget: a loaded 2-core CI box must not turn sympy's first
# slow call into a spurious timeout.
CHECK_TIMEOUT_S = 2.0
# Takes sympy minutes (it expands 2000 terms exactly) yet passes every size guard: the one
# sure way to exercise the kill-and-replace path without a test-only hook in the worker.
SLOW_SUM = "\\sum_{k=1}^{2000}\\frac{1}{k^{2}+k+1}"


@pytest.fixture(scope="module")
def verifier():
    with Verifier(timeout_s=CHECK_TIMEOUT_S, workers=2) as v:
        yield v


# -- extraction -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so the answer is $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("\\boxed{1} then \\boxed{\\left\\{ 1, \\frac{2}{3} \\right\\}}", "\\left\\{ 1, \\frac{2}{3} \\right\\}"),
        ("nested \\boxed{\\frac{\\sqrt{3}}{\\sqrt{\\frac{1}{2}}}} end", "\\frac{\\sqrt{3}}{\\sqrt{\\frac{1}{2}}}"),
        ("\\fbox{42}", "42"),
        ("\\boxed 7$", "7"),
        ("first \\boxed{3}, then cut off \\boxed{\\frac{1", "3"),
        ("The final answer is $5$. I hope it is correct.", "5"),
        ("Final Answer: The final answer is 12. I hope it is correct.", "12"),
        ("Final Answer: x = 3", "x = 3"),
        ("so the answer is 17.", "17"),
        ("Natalia sold 48 clips.\n#### 72", "72"),
        ("no answer here", None),
        ("", None),
        ("\\boxed{}", None),
        ("\\boxed{4\x00}", "4"),
    ],
)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_last_number_fallback_only_when_enabled() -> None:
    # The last sentence works on rather than concludes, so only the fallback reads its number.
    text = "We start with 3 apples. Then we buy 1,250 pears"
    assert extract_answer(text) is None
    assert extract_answer(text, last_number_fallback=True) == "1,250"
    assert check(text, "1250", last_number_fallback=True).outcome is Outcome.CORRECT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B = 5, so R = 4B = 20.\n\nTherefore, the length of the red rope is 20 centimeters.", "20"),
        ("$32 - $24 = $8\n\nSo, after all his transactions, Raymond has $8 left.", "8"),
        ("4 x 3 = 12.\n\nTherefore, Freda used **12 tomatoes** to make her sauce.", "12"),
        ("144 - 90 = 54 miles.\n\nElvis is 54 miles east of his house after his journey.", "54"),
        ("Thus, Charlie will make a total of \\(\\$440\\) for the day.", "\\$440"),
        ("The net change is a loss. Therefore, the temperature fell by -3 degrees.", "-3"),
        ("In total she paid $1,250.50 for the rent.", "1,250.50"),
        # Working, not a conclusion: no answer (the search counts it as unparseable).
        ("We have 3 apples. Then we buy 12 pears and", None),
        ("Therefore, the answer follows from the figure.", None),
    ],
)
def test_closing_sentence_states_the_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected
    assert extract_answer(text, closing_sentence_answer=False) is None


def test_an_announced_sentence_gives_its_number() -> None:
    text = "Change = 20 - 13 = 7.\n\n**Answer:** Verna received $7.00 in change."
    assert extract_answer(text) == "7.00"
    assert extract_answer("So the answer is 4 * 8 = 32.") == "4 * 8 = 32"
    assert check("So the answer is 4 * 8 = 32.", "32").outcome is Outcome.CORRECT


def test_extraction_is_linear_on_huge_text() -> None:
    started = time.perf_counter()
    assert extract_answer("{" * 1_000_000 + "\\boxed{" + "(" * 100_000) is None
    assert extract_answer("The answer is " + " " * 200_000 + "x") == "x"
    assert extract_answer("The answer is " + " " * 1_000_000 + "x") is None  # over MAX_SOLUTION_CHARS
    assert time.perf_counter() - started < 2.0


# -- the case table ---------------------------------------------------------------------------


def test_case_table_covers_every_category() -> None:
    assert len(CASES) >= 150
    categories = {c.category for c in CASES}
    assert {"fraction", "radical", "pi_e", "polynomial", "interval", "tuple", "set", "matrix",
            "equation", "inequality", "text", "units", "degrees"} <= categories
    for category in categories:
        expectations = {c.expected for c in CASES if c.category == category}
        assert False in expectations or category == "base", f"{category} has no wrong pairs"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.category}:{c.gold}|{c.pred}" for c in CASES])
def test_case_table(verifier: Verifier, case) -> None:  # type: ignore[no-untyped-def]
    verdict = verifier.check_batch([f"... so \\boxed{{{case.pred}}}"], case.gold)[0]
    if case.expected:
        assert verdict.outcome is Outcome.CORRECT, verdict
    else:  # junk such as `\frac{` cannot even be extracted
        assert verdict.outcome in (Outcome.WRONG, Outcome.NO_ANSWER), verdict


def test_equivalent_is_symmetric_on_the_table() -> None:
    for case in CASES:
        if case.category in ("equation", "junk", "units"):
            continue  # `y=2x+3` vs `2x+3` is MATH's convention one way only
        assert equivalent(case.pred, case.gold) is case.expected, case


# -- verdict semantics ------------------------------------------------------------------------


def test_truncated_no_answer_and_timeout_are_not_wrong(verifier: Verifier) -> None:
    verdicts = verifier.check_batch(
        ["\\boxed{5}", "\\boxed{5}", "I give up", "\\boxed{6}"], "5", [False, True, False, False]
    )
    assert verdicts == [
        AnswerCheck(Outcome.CORRECT, "5"),
        AnswerCheck(Outcome.TRUNCATED, "5"),
        AnswerCheck(Outcome.NO_ANSWER, None),
        AnswerCheck(Outcome.WRONG, "6"),
    ]
    with pytest.raises(ValueError, match="truncated has 1 flags for 2 solutions"):
        verifier.check_batch(["a", "b"], "5", [True])


def test_equal_forms_and_plain_wrong_numbers_never_touch_the_pool() -> None:
    with Verifier() as v:
        golds = ["42", "\\frac{14}{3}", "0.15", "2\\sqrt{3}", "(1,2)", "x^2+1", "\\text{east}"]
        equal = ["42", "14/3", ".15", "\\sqrt{12}", "(1, 2)", "1+x^2", "east"]
        for gold, pred in zip(golds, equal):
            assert v.check_batch([f"\\boxed{{{pred}}}"], gold)[0].outcome is Outcome.CORRECT
        for gold in ("42", "\\frac{14}{3}", "0.15", "(1,2)"):
            verdicts = v.check_batch([f"\\boxed{{{p}}}" for p in ("41", "-3", "(1,3)", "0.2")], gold)
            assert all(verdict.outcome is Outcome.WRONG for verdict in verdicts)
        assert v._pool is None
        assert v.stats().get("symbolic_checks", 0) == 0


def test_a_rejected_expression_is_confirmed_once_in_the_pool() -> None:
    """The in-process parser may accept an expression but never reject one on its own: a notation
    it misreads must not become a final "wrong". The pool decides once; the cache serves repeats."""
    with Verifier() as v:
        verdicts = v.check_batch(["\\boxed{2\\sqrt{2}}"] * 5 + ["\\boxed{x^2-1}"], "2\\sqrt{3}")
        assert [verdict.outcome for verdict in verdicts] == [Outcome.WRONG] * 6
        stats = v.stats()
        assert stats["symbolic_checks"] == 2 and stats["cache_hits"] == 4


def test_cache_serves_repeated_pairs() -> None:
    with Verifier() as v:
        v.check_batch(["\\boxed{\\frac{1}{2}}"] * 10 + ["\\boxed{0.5}"], "\\dfrac12")
        stats = v.stats()
        assert stats["correct"] == 11
        assert stats["cache_hits"] == 9


# -- adversarial input ------------------------------------------------------------------------


def _huge_inputs() -> list[str]:
    return [
        "1" * 1_000_000,
        "(" * 5000 + "1" + ")" * 5000,
        "\\frac{" * 5000 + "1",
        "{" * 5000,
        "\\boxed{" * 1000,
        "\\sqrt{" * 3000 + "2" + "}" * 3000,
        "x" + "^x" * 5000,
    ]


def test_adversarial_inputs_return_in_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    budget = TIMEOUT_S + 0.5
    with Verifier(timeout_s=TIMEOUT_S, workers=2) as v:
        v.warm_up()
        for pred in [*ADVERSARIAL, *INJECTIONS, *_huge_inputs()]:
            for solution in (f"\\boxed{{{pred}}}", pred, f"The answer is {pred}"):
                started = time.perf_counter()
                verdict = v.check_batch([solution], "5")[0]
                elapsed = time.perf_counter() - started
                assert elapsed < budget, (pred[:60], elapsed)
                assert verdict.outcome is not Outcome.CORRECT, pred[:60]
    assert not (tmp_path / "PWNED").exists()


def test_injections_never_run_in_the_parser_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apsgen.verify.symbolic import equivalent_symbolic

    monkeypatch.chdir(tmp_path)
    for text in INJECTIONS:
        assert equivalent_symbolic("5", text) is False
        if "PWNED" in text:  # two different injections are not one answer (math-verify included)
            assert equivalent_symbolic(text, text.replace("PWNED", "OTHER")) is False
    assert list(tmp_path.iterdir()) == []


def test_invalid_unicode_and_null_bytes(verifier: Verifier) -> None:
    assert verifier.check_batch(["\\boxed{\ud800 5}"], "5")[0].outcome is Outcome.WRONG
    assert verifier.check_batch(["\\boxed{5\x00}"], "5")[0].outcome is Outcome.CORRECT
    assert equivalent("\udfff", "\udfff") is True


# -- the pool: timeouts, restarts, asyncio ----------------------------------------------------


def test_timeout_kills_and_replaces_the_worker() -> None:
    with Verifier(timeout_s=CHECK_TIMEOUT_S, workers=1) as v:
        v.warm_up()
        before = v._pool.worker_pids()  # type: ignore[union-attr]
        started = time.perf_counter()
        verdict = v.check_batch([f"\\boxed{{{SLOW_SUM}}}"], "2")[0]
        elapsed = time.perf_counter() - started
        assert verdict == AnswerCheck(Outcome.TIMEOUT, SLOW_SUM)
        assert CHECK_TIMEOUT_S <= elapsed < CHECK_TIMEOUT_S + 0.5
        # The replacement answers the next symbolic check; the timeout was cached.
        assert v.check_batch(["\\boxed{\\sin^{2}(x)+\\cos^{2}(x)}"], "1")[0].outcome is Outcome.CORRECT
        assert v.check_batch([f"\\boxed{{{SLOW_SUM}}}"], "2")[0].outcome is Outcome.TIMEOUT
        stats = v.stats()
        assert stats["timeout"] == 2 and stats["pool_timeouts"] == 1
        assert stats["pool_restarts"] == 1
        after = v._pool.worker_pids()  # type: ignore[union-attr]
        assert before and after and set(before).isdisjoint(after)
        for pid in before:
            with pytest.raises(ProcessLookupError):
                _wait_until_gone(pid)


def test_a_timeout_from_load_is_not_remembered() -> None:
    """A check that expired waiting behind a slow one says nothing about its pair: asked again, it
    is decided. The slow check, which ran its whole budget, is remembered."""
    with Verifier(timeout_s=CHECK_TIMEOUT_S, workers=1) as v:
        v.warm_up()
        waiting = "\\boxed{\\sin^{2}(x)+\\cos^{2}(x)}"
        first = v.check_batch([f"\\boxed{{{SLOW_SUM}}}", waiting], "1")
        assert [verdict.outcome for verdict in first] == [Outcome.TIMEOUT, Outcome.TIMEOUT]
        assert v.stats()["pool_queue_timeouts"] == 1
        assert v.check_batch([waiting], "1")[0].outcome is Outcome.CORRECT
        started = time.perf_counter()
        assert v.check_batch([f"\\boxed{{{SLOW_SUM}}}"], "1")[0].outcome is Outcome.TIMEOUT
        assert time.perf_counter() - started < 0.1  # the full timeout was remembered


def test_a_timeout_from_a_dead_worker_is_not_remembered() -> None:
    with Verifier(timeout_s=CHECK_TIMEOUT_S, workers=1) as v:
        v.warm_up()
        (pid,) = v._pool.worker_pids()  # type: ignore[union-attr]
        killer = threading.Timer(0.3, os.kill, (pid, signal.SIGKILL))
        killer.start()
        started = time.perf_counter()
        assert v.check_batch([f"\\boxed{{{SLOW_SUM}}}"], "2")[0].outcome is Outcome.TIMEOUT
        assert time.perf_counter() - started < CHECK_TIMEOUT_S  # the crash, not the deadline
        killer.join()
        # Asked again, the pair is checked again (and now runs out its whole budget) ...
        started = time.perf_counter()
        assert v.check_batch([f"\\boxed{{{SLOW_SUM}}}"], "2")[0].outcome is Outcome.TIMEOUT
        assert time.perf_counter() - started >= CHECK_TIMEOUT_S
        # ... and that full timeout is remembered.
        started = time.perf_counter()
        assert v.check_batch([f"\\boxed{{{SLOW_SUM}}}"], "2")[0].outcome is Outcome.TIMEOUT
        assert time.perf_counter() - started < 0.1
        assert v.stats()["symbolic_checks"] == 2


def _wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        os.kill(pid, 0)  # raises ProcessLookupError once the zygote has reaped it
        time.sleep(0.02)


def test_async_checks_never_block_the_loop() -> None:
    async def scenario() -> tuple[list[AnswerCheck], list[float]]:
        with Verifier(timeout_s=CHECK_TIMEOUT_S, workers=2) as v:
            ticks: list[float] = []
            stop = asyncio.Event()

            async def ticker() -> None:
                while not stop.is_set():
                    ticks.append(time.perf_counter())
                    await asyncio.sleep(0.01)

            tick_task = asyncio.create_task(ticker())
            # The first call also boots the pool: that, too, must happen off the loop.
            slow = asyncio.create_task(v.acheck_batch([f"\\boxed{{{SLOW_SUM}}}"], "2"))
            many = [
                asyncio.create_task(v.acheck_batch(["\\boxed{\\sin^{2}(y)+\\cos^{2}(y)}"] * 3, "1"))
                for _ in range(20)
            ]
            results = [*(await slow), *[verdict for task in many for verdict in await task]]
            stop.set()
            await tick_task
            assert v.stats()["symbolic_checks"] == 2  # 20 concurrent batches, one check
            return results, ticks

    results, ticks = asyncio.run(scenario())
    assert results[0].outcome is Outcome.TIMEOUT
    assert all(r.outcome is Outcome.CORRECT for r in results[1:])
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(ticks) > 0.5 * CHECK_TIMEOUT_S / 0.01
    # A blocked loop would show one gap as long as the slow check (2 s); shorter stalls are the
    # OS scheduler on a busy 2-core box, not us.
    assert max(gaps) < 0.5 * CHECK_TIMEOUT_S, max(gaps)


def test_verifier_constructs_without_processes() -> None:
    v = Verifier()
    assert v._pool is None
    assert v.check_batch(["\\boxed{3}"], "3")[0].outcome is Outcome.CORRECT
    assert v._pool is None
    v.close()
