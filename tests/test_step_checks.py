"""What a step's text settles without rollouts: false equations, retractions and restatements of the question.

The cases are the kinds of steps real small models write (several from the demo's SmolLM2-135M
run), and the traps a reader of model output meets: algebra, percentages, rounding, units,
thousands separators, words that bind a number to something larger.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from search_support import BoxedVerifier, ScriptedPolicy

from apsgen.config import Labelling
from apsgen.label.text import MAX_CHARS, continuation_error, false_equation, restates_question, retracts, text_error
from apsgen.policy.base import Sampling
from apsgen.problem import Problem
from apsgen.search import run_search

FALSE = [
    "50 - 18 = 12 apples left",
    "18 - 12 = 12 apples left.",
    "His father is 4 times 8 = 40 years old.",
    "So 4 \\times 8 = 24.",
    "After giving away 16, Bo has 56 - 16 = 37 boxes.",
    "3 + 4 * 2 = 14",
    "x = 5 + 3 = 9",
    "$3 \\times 2 = \\$7$",
    "The total is 3 + 5 = 8. Then 8 - 2 = 5.",
    "(10 + 4) / 2 = 6",
    "2 x 6 = 18 eggs",
]
NOT_FALSE = [
    "18 + 34 = 52 boxes",  # true
    "x = 5 + 3 = 8",
    "2 times 3 + 1 = 7",
    "(3+4)*2 = 14",
    "1,200 - 200 = 1,000",  # thousands separators
    "10 / 3 = 3.33",  # rounded to its places
    "20% of 50 = 10",  # a percentage: the left side is not read
    "half of 10 + 2 = 7",  # a word binds the number to more than we read
    "2x + 3 = 7",  # algebra
    "5^2 + 1 = 26",
    "a_1 + 2 = 3",
    "10 - 3 = 7%",
    "50 apples \\times 18 = 90",  # a side we cannot read whole is not read
    "2 = 4",  # no operation on either side: a claim, not arithmetic
    "The answer is \\boxed{19}.",
    "Let 3 + 4 = 8 hold in this strange system",  # "let" does not bind; still false arithmetic?
]


# Taken from ProcessBench's real solutions (Qwen2/2.5, Llama-3/3.1; item ids in the comments), each
# family the check once misread. A side belongs to its term, a named quantity is a letter, a line
# or a math span ends an expression, a division may have a remainder, a rounded or approximate value
# holds, a function's argument is not a side, a modulus or a running total is read as meant.
NOT_FALSE_REAL = [
    "\\[ 3n - 4 = 70 \\]",  # math-142: not "4 = 70"
    "subject to the constraint \\(g(x,y) = x + y - 1 = 0\\).",  # math-301
    "\\[61a^2 - 108a - 225 = 0\\]",  # math-179
    "\\[ -k^2 - 10k - 9 = 0 \\]",
    "using his current age: D - 8 = 60 - 8.",  # gsm8k-88
    "Value of Juan's house = Value of Herb's house - $22,800 = $76,000 - $22,800 = $53,200.",  # gsm8k-321
    "AC - BC = T - 1 = 35 - 1 = 34",
    "\\[ \\text{Alyana's Age} = \\text{Chenny's Age} - 4 = 10 - 4 = 6 \\]",  # gsm8k-292
    "First, \\(410 \\div 333 = 1\\) with a remainder of \\(77\\).",  # math-245
    "we divide 20 by 6: \\[20 \\div 6 = 3\\, R\\, 2\\].",  # math-849
    "\\( \\frac{36}{5} = 7 \\) full pens (with a remainder of 1, but we only count complete full pens).",  # gsm8k-56
    "The prime factors are:\n10 = 2 \\times 5\n- 11 = 11",  # a list's lines
    "So the fraction is 14 / 19 = 0.736.",
    "\\[ EM = |5.1716 - 8| = | -2.8284 | = 2.8284 \\] and (2.8284)^2 = 8",  # math-883
    "Now, add up the terms: \\( f(-2) = 20 - 6 + 4 \\).",  # math-703
    "so \\( h(1) = a(1) + b = a + b \\) and \\( h(-1) = a(-1) + b = -a + b \\).",  # math-906
    "\\[ 3(5)^2 + a(5) - 115 = 0, \\]",  # math-551
    "\\[ (-2-1)P(-1) = (-2+2)P(-2) \\implies -3P(-1) = 0 \\implies P(-1) = 0 \\]",  # math-43
    "\\(3 \\times 13 = 39\\), and \\(39 \\mod 19 = 0 + 20 \\mod 19 = 1\\)",  # math-197
    "is $10^8 - 1 = 99,999,999$, but we need",  # math-52
    "Since $90^3=729,\\!000$, $\\text{AB}$ is greater than 90.",  # MATH500's own solution
    "\\[ x = \\frac{8 \\pm 2\\sqrt{2}}{4} = \\frac{8}{4} \\pm \\frac{2\\sqrt{2}}{4} = 2 \\pm \\frac{\\sqrt{2}}{2} \\]",  # math-836
    "\\[ 1 + 2 + 3 + \\cdots + 8 = \\frac{8 \\cdot 9}{2} \\]",
    "If $b=2$, then $4a=4(a-3)\\qquad\\Rightarrow 0=-12$.",  # MATH500's own solution
    "So 1/2 off of 1 pound is $3/2 = $1.50+$3.00=$4.50",  # GSM8K's own solution: a running total
    "Is 3 + 4 = 8? No, 3 + 4 = 7.",
    "In base 7, 25 + 36 = 64.",
    "The greatest integer is [10/3] = 3.",
    "\\(2\\log 100 = 4\\) and \\(2 \\sin 30 = 1\\)",
]
FALSE_REAL = [
    "then the bakery has 7 * 70 - 40 = 470 - 40 = 430 loaves of bread.",  # gsm8k-126
    "= 6 * 720 * 120 * 6 = 6 * 518400 = 3104400.",  # math-4
    "Second, \\(168 = 2^3 \\times 7\\).",  # math-19
    "\\[(a(-1) + b(1) + c(1) + d(1))^2 = (a - 1 + b + c + d)^2 = (17 - 1)^2 = 49^2 = 2401,\\]",  # math-234
    "$\\frac{21}{2^2 \\cdot 5^7} = \\frac{21}{4 \\cdot 78125} = \\frac{21}{3125000} = 0.00000672$",  # math-447
    "$$\\frac{13!}{4!9!}=\\frac{13\\cdot 12\\cdot 11\\cdot 10}{4\\cdot3\\cdot2\\cdot1}=\\frac{13\\cdot 11\\cdot 10\\cdot 11}{4\\cdot3\\cdot2}$$",  # math-100
    "\\[ \\$20 - \\$13.00 = \\$6.00 \\]",  # gsm8k-110
    "First, divide 194 by 11: 194 \\div 11 = 17 with a remainder of 9.",  # math-0: the remainder is 7
]


@pytest.mark.parametrize("text", NOT_FALSE_REAL)
def test_real_equations_that_hold_or_cannot_be_read_are_not_false(text: str) -> None:
    assert false_equation(text) is None


@pytest.mark.parametrize("text", FALSE_REAL)
def test_real_false_equations_are_found(text: str) -> None:
    assert false_equation(text) is not None


@pytest.mark.parametrize("text", FALSE)
def test_false_equations_are_found(text: str) -> None:
    assert false_equation(text) is not None


@pytest.mark.parametrize("text", NOT_FALSE[:-1])
def test_true_or_unreadable_equations_are_not(text: str) -> None:
    assert false_equation(text) is None


def test_a_stated_false_equation_is_false_whatever_the_words_around_it() -> None:
    # The check reads arithmetic, not intent: an equation between plain numbers that does not hold is
    # wrong as written, even in a hypothetical.
    assert false_equation(NOT_FALSE[-1]) == "3 + 4 = 8"


def test_model_garbage_is_read_in_linear_time_and_long_steps_not_at_all() -> None:
    t0 = time.perf_counter()
    assert false_equation("1+" * 5_000 + "1=3") is None  # a side longer than MAX_TOKENS
    assert false_equation("= 1 " * 4_000) is None
    assert false_equation("(" * 9_000 + "1 + 1 = 3") is None  # unbalanced, and too long
    assert false_equation("(" * 9_000 + " so 1 + 1 = 3") == "1 + 1 = 3"
    assert false_equation("x" * (MAX_CHARS + 1) + " 1 + 1 = 3") is None
    assert not restates_question("Sara has 12 stickers.", "12 " * MAX_CHARS)
    # LaTeX that never closes, spans that never end, towers, factorials, rows, words: each step up
    # to MAX_CHARS is read in one pass
    for garbage in ("\\[" * 9_000, "$1+1=3" * 3_000, "\\(\\text{" * 2_500, "\\(" + "\\frac{1}{" * 2_000,
                    "\\(" + "1+1=" * 4_900 + "\\)", "\\(" + "{" * 19_000 + "1+1=3\\)", "\\(9^{9^{9}} = 2 + 1\\)" * 500,
                    "\\(" + "= 1 + 1\\\\" * 2_000 + "\\)", "10 / 3 = 3" + " r" * 9_000, "\\(500! = 1 + 2\\)" * 800):
        false_equation(garbage[:MAX_CHARS])
    assert time.perf_counter() - t0 < 4.0


SHOP = "A shop had 50 apples. It sold 18 in the morning and 12 in the afternoon. How many apples are left?"
ANNA = "Anna buys 2 notebooks that cost 3 dollars each and a pen that costs 2 dollars. How many dollars does she spend?"
SARA = "Sara has 12 stickers and her friend gives her 7 more. How many stickers does Sara have now?"
MIA = "Mia reads 5 pages every day. How many pages does she read in 6 days?"
FARM = "A farmer has 6 rows of apple trees with 7 trees in each row. How many apple trees does the farmer have?"
TOM = "Tom had 25 marbles. He gave 9 marbles to his sister. How many marbles does Tom have left?"
RESTATEMENTS = [
    (SHOP, "It sold 18 apples in the morning and 12 apples in the afternoon.", True),
    (SHOP, "The shop had 50 apples.", True),
    (ANNA, "Each notebook costs 3 dollars and each pen costs 2 dollars.", True),
    (SARA, "Sara has 12 stickers.", True),
    (TOM, "Tom had 25 marbles.", True),
    # a number beside another word than in the question: a claim, not a restatement
    (TOM, "He has 9 marbles.", False),
    (SARA, "Sara has 7 stickers.", False),
    (SHOP, "The shop sold 12 apples in the morning.", False),
    # a conclusion, an operation, an answer, or a number the question does not give
    (SHOP, "It has 18 apples left.", False),
    (SHOP, "So it sold 18 in the morning.", False),
    (SARA, "Sara has 12 + 7 stickers.", False),
    (SARA, "The answer is \\boxed{12}.", False),
    (SARA, "Sara has 19 stickers.", False),
    (ANNA, "Anna buys 2 boxes of notebooks and 2 x 2 = 4 boxes of pens.", False),
    (SARA, "Let us count the stickers.", False),  # no number: left to the rollouts
    # from the demo's SmolLM2-135M run: right restatements, and wrong ones built from the question's words
    (ANNA, "Anna buys 2 notebooks for 3 dollars each and the pen costs 2 dollars.", True),
    (ANNA, "Anna buys 2 notebooks and the pen is 2 dollars.", True),
    # a true restatement it misses (conservative): "18 apples" where the question says "18 in"
    (SHOP, "In the morning, 18 apples were sold, and in the afternoon, 12 apples were sold.", False),
    (ANNA, "Anna buys 2 notebooks and one of them costs 2 dollars.", False),
    (ANNA, "The other thing costs 3 dollars.", False),
    (MIA, "In 6 days, Mia reads 5 pages.", False),
    (MIA, "Mia reads 5 pages every day.", True),
    (FARM, "So each row has 7 apples.", False),  # a conclusion word: left to the rollouts
]


# Admissions of an earlier mistake, as models write them (the first is the story world's own), and
# what must never count as one: a double-check that confirms, the word "correct", a question.
RETRACTS = [
    "Wait, I made a mistake earlier. The correct count so far is 145 crates.",
    "I miscalculated: 12 + 7 is 19, not 18.",
    "Hmm, that was wrong. Let me redo it.",
    "My mistake, the pens cost 2 dollars each.",
    "Correction: she gives away 9, not 6.",
    "**Correction:** the total is 19.",
    "The previous step is incorrect because the trees are not apples.",
    "There was an error in step 2.",
    "We made an arithmetic error above, so the sum is 41.",
    "Oh no, I misread the question: it says 7 more.",
]
NOT_RETRACTS = [
    "Let me double-check: 3 + 4 = 7. Yes, that is correct.",
    "Wait, let me verify the total.",
    "The correct count is 145.",
    "Is this wrong? No, 6 x 7 = 42.",
    "She corrected her homework and found 3 mistakes.",
    "There is no mistake in the sum.",
    "That is right, so the answer is \\boxed{19}.",
    "Tom made a mistake on 3 questions, so he got 17 right.",
]


@pytest.mark.parametrize("text", RETRACTS)
def test_retractions_are_read(text: str) -> None:
    assert retracts(text) and text_error(text) == "retraction"


@pytest.mark.parametrize("text", NOT_RETRACTS)
def test_checks_and_confirmations_are_not_retractions(text: str) -> None:
    assert not retracts(text)


def test_a_continuation_shows_its_first_error_and_reads_garbage_in_linear_time() -> None:
    assert continuation_error("Sara has 12.\n\n12 + 7 = 18.\n\nWait, I made a mistake.") == "arithmetic"
    assert continuation_error("Sara has 12.\n\nWait, I made a mistake.\n\n12 + 7 = 19.") == "retraction"
    assert continuation_error("Sara has 12.\n\n12 + 7 = 19.\n\nThe answer is \\boxed{19}.") is None
    for garbage in ("\n" * 1_000_000, "I " * 500_000, "that " * 200_000 + "\n", "1 + " * 200_000):
        t0 = time.perf_counter()
        continuation_error(garbage)
        assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize(("question", "step", "restates"), RESTATEMENTS)
def test_restatements(question: str, step: str, restates: bool) -> None:
    assert restates_question(question, step) is restates


# -- in the search ---------------------------------------------------------------------------

QUESTION = "Sara has 12 stickers and her friend gives her 7 more. How many stickers does Sara have now?"
GOOD = "Sara has 12 stickers.\n\nShe gets 7 more, so 12 + 7 = 19.\n\nThe answer is \\boxed{19}."
# right answer through a false equation (MC alone can never see this step)
LUCKY = "Sara has 12 stickers.\n\nShe gets 7 more, so 12 + 7 = 18.\n\nThe answer is \\boxed{19}."
# a restatement after which the policy stops finishing, then a wrong step
WRONG = "Sara has 12 stickers.\n\nShe gives 7 away, so 12 - 7 = 5.\n\nThe answer is \\boxed{5}."


def continue_fn(prefix: str, i: int) -> str:
    """From the empty prefix the three solutions in turn; from a prefix, a good start finishes well
    and a bad one badly, except that after the bare restatement this weak policy finishes well only
    one time in four."""
    sep = "" if prefix == "" or prefix.endswith("\n") else "\n\n"
    if prefix == "":
        return (GOOD, LUCKY, WRONG, WRONG)[i % 4]
    if "12 - 7" in prefix:
        return sep + "The answer is \\boxed{5}."
    if prefix.strip() == "Sara has 12 stickers.":
        rest = (GOOD if i % 4 == 0 else WRONG).split("\n\n", 1)[1]
        return sep + rest
    return sep + "The answer is \\boxed{19}."


def run(step_checks: bool, policy=continue_fn, k: int = 4):  # type: ignore[no-untyped-def]
    problem = Problem(id="sara", question=QUESTION, answer="19", dataset="t", row=0)
    search = Labelling.of(k=k, k_max=16, screen_samples=8, max_searches=8, step_checks=step_checks, calibration_questions=0)
    return asyncio.run(run_search(problem, ScriptedPolicy(policy), BoxedVerifier(), search, Sampling(), seed=0))


def test_the_search_uses_what_the_text_settles() -> None:
    result = run(step_checks=True)
    firsts = {s.step_text.strip() for s in result.steps if s.is_first_error}
    # the false equation of a right answer is a first error; the restatement never is
    assert "She gets 7 more, so 12 + 7 = 18." in firsts
    assert "Sara has 12 stickers." not in firsts
    lucky = next(s for s in result.steps if s.step_text.strip().endswith("12 + 7 = 18."))
    assert lucky.verdict == "wrong" and lucky.verdict_basis == "arithmetic" and lucky.n_rollouts == 0
    # and the lucky solution is not stored as an all-good path
    assert not any(s.label_source == "correct_solution" and "= 18" in s.prefix + s.step_text for s in result.steps)
    restated = [s for s in result.steps if s.step_text.strip() == "Sara has 12 stickers."]
    assert restated and all(s.verdict != "wrong" for s in restated)


def test_without_step_checks_mc_alone_decides() -> None:
    result = run(step_checks=False)
    assert all(s.verdict_basis == "rollouts" for s in result.steps)
    assert not any(s.is_first_error and "= 18" in s.step_text for s in result.steps)


# A policy that misreads a number (a true equation on the wrong operand: no arithmetic check sees
# it) and, half the time, says so later and recovers. MC alone sees a prefix worth 0.5 after the
# misreading and calls it correct; the retraction shows that those right answers are recoveries.
MISREAD = "Sara has 12 stickers.\n\nShe gets 8 more, so 12 + 8 = 20."
RECOVERED = MISREAD + "\n\nWait, I made a mistake earlier: she gets 7 more, so 12 + 7 = 19.\n\nThe answer is \\boxed{19}."
MISLED = MISREAD + "\n\nThe answer is \\boxed{20}."


def recovering(prefix: str, i: int) -> str:
    sep = "" if prefix == "" or prefix.endswith("\n") else "\n\n"
    if prefix == "":
        return (GOOD, RECOVERED, MISLED, MISLED)[i % 4]
    if "12 + 8 = 20" in prefix and "mistake" not in prefix:
        return sep + (RECOVERED if i % 2 else MISLED)[len(MISREAD) + 2 :]
    if prefix.strip() == "Sara has 12 stickers.":
        return sep + (GOOD, RECOVERED, MISLED, GOOD)[i % 4].split("\n\n", 1)[1]
    return sep + "The answer is \\boxed{19}."


def test_a_retraction_marks_the_recovery_and_the_error_before_it_is_found() -> None:
    result = run(step_checks=True, policy=recovering, k=8)
    firsts = {s.step_text.strip() for s in result.steps if s.is_first_error}
    assert firsts == {"She gets 8 more, so 12 + 8 = 20."}
    misread = next(s for s in result.steps if (s.prefix + s.step_text).strip() == MISREAD)
    # its right completions all came through the retraction: counted, and not taken as evidence
    assert misread.verdict == "wrong" and misread.n_correct > 0 and misread.n_correct_flawed == misread.n_correct
    retraction = next(s for s in result.steps if s.step_text.startswith("Wait, I made a mistake"))
    assert retraction.verdict == "wrong" and retraction.verdict_basis == "retraction"
    # the recovered solution is no all-good path
    assert not any(s.label_source == "correct_solution" and "mistake" in s.prefix + s.step_text for s in result.steps)


def test_without_step_checks_the_recovery_hides_the_misreading() -> None:
    result = run(step_checks=False, policy=recovering, k=8)
    assert all(s.n_correct_flawed == 0 for s in result.steps)
    assert "She gets 8 more, so 12 + 8 = 20." not in {s.step_text.strip() for s in result.steps if s.is_first_error}


# -- planting: a correct step made wrong on purpose, the way a strong policy errs ------------------

from apsgen.label.text.planting import misread, plant_error  # noqa: E402

PLANTED = [
    # a true equation: its operand misread and the result following from it (still a true equation)
    "After buying 14 more, Ada has 23 + 14 = 37 crates.",
    "So there are 4 \\times 6 = 24 eggs.",
    "He has 3 + 5 = 8.",
    # no equation: its last number miscopied
    "So far, Ada has 37 crates.",
    "The answer is 12.",
]
NOT_PLANTED = ["Let me keep going.", "Price 12.50 now", "10% off", "3,000 apples", "x" * (MAX_CHARS + 1) + " 1 + 1 = 2"]


@pytest.mark.parametrize("step", PLANTED)
def test_a_planted_step_is_wrong_and_shows_no_false_equation(step: str) -> None:
    planted = plant_error(step)
    assert planted is not None and planted != step
    assert false_equation(planted) is None  # invisible to the checks, as a strong policy's errors are
    assert plant_error(step) == planted  # the same step is always planted the same way
    if misread(step) is not None:
        assert planted == misread(step)


@pytest.mark.parametrize("step", NOT_PLANTED)
def test_a_step_without_a_whole_number_to_change_is_not_planted(step: str) -> None:
    assert plant_error(step) is None


def test_planting_reads_garbage_in_linear_time() -> None:
    t0 = time.perf_counter()
    for garbage in ("1 + " * 5_000, "1 = " * 5_000, "9" * 19_000, "\\times 2 " * 2_000):
        plant_error(garbage[:MAX_CHARS])
    assert time.perf_counter() - t0 < 2.0
