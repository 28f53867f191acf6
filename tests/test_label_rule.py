"""The label rule and the edge cases a real policy produces: each driven by a policy that makes it."""

from __future__ import annotations

import asyncio
import json

import pytest
from search_support import BoxedVerifier, ScriptedPolicy

from apsgen.config import CalibrationSpec, Labelling, SimulatedSpec
from apsgen.label.calibration import Calibration
from apsgen.label.evidence import MCStats
from apsgen.label.probes import OwnRecovery, Probe
from apsgen.label.rule import RuleParams, SequentialRule, decide, depth_reference, make_rule
from apsgen.policy.base import Sampling
from apsgen.problem import Problem
from apsgen.search import run_search
from apsgen.search.binary_search import locate_first_error
from apsgen.search.context import SearchContext
from apsgen.search.selection import Pool
from apsgen.search.steps import StepSplitter
from apsgen.worlds.chain import SimulatedPolicy, first_error_offset, simulated_problems

PROBLEM = Problem(id="p1", question="q", answer="7")


def stats(correct: int, wrong: int, truncated: int = 0) -> MCStats:
    return MCStats(n_rollouts=correct + wrong + truncated, n_correct=correct, n_wrong=wrong, n_truncated=truncated)


NEVER = Calibration(0.0005, 256.0, "calibrated", recovery_model="absolute")  # wrong prefixes never recover
RARE = Calibration(0.02, 64.0, "calibrated", recovery_model="absolute")
OFTEN = Calibration(0.15, 64.0, "calibrated", recovery_model="absolute")  # one in six, on every question
WIDE = Calibration(0.05, 1.5, "calibrated", recovery_model="absolute")  # rare on most questions, common on some
PRIOR = Calibration.prior(CalibrationSpec())
PARAMS = RuleParams.from_settings(Labelling())

# (successes, graded, reference, calibration) -> verdict, and for "undecided" whether it asks for more.
# Read as a reviewer would: one right completion in 8 from a prefix worth 0.8 shows the prefix is still
# correct where the policy never recovers, and shows nothing where it recovers one time in six.
CASES = [
    (6, 8, 0.7, RARE, "correct", None),
    (0, 8, 0.9, RARE, "wrong", None),
    (2, 8, 0.8, NEVER, "correct", None),
    (2, 8, 0.8, OFTEN, "undecided", True),
    (1, 31, 0.5, RARE, "wrong", None),  # more evidence settles what 1 of 8 could not
    (1, 7, 0.5, PRIOR, "undecided", True),
    (0, 32, 0.06, NEVER, "wrong", None),  # at k_max, where nothing recovers, the likelier verdict
    (1, 31, 0.06, NEVER, "correct", None),
    (0, 32, 0.06, OFTEN, "undecided", False),  # ...where recovery is common, no guess
    (7, 32, 0.5, OFTEN, "undecided", False),  # at k_max between the hypotheses: stays undecided
    (0, 24, 0.02, OFTEN, "undecided", False),  # k_max cannot settle it: no top-up bought
    (0, 0, 0.5, RARE, "undecided", True),  # nothing graded yet
]


@pytest.mark.parametrize(("c", "n", "ref", "cal", "verdict", "more"), CASES)
def test_the_sequential_rule_on_its_case_table(c: int, n: int, ref: float, cal: Calibration, verdict: str,
                                               more: bool | None) -> None:
    d = decide(stats(c, n - c), ref, cal, PARAMS)
    assert d.verdict == verdict
    if more is not None:
        assert (d.more > 0) is more


# A question's own recovery probes (fresh rollouts at prefixes wrong by a false equation):
# (successes, graded, reference) each.
RECOVERS = OwnRecovery((Probe(5, 8, 0.5), Probe(4, 8, 0.6)))  # its wrong prefixes end right half the time
NEVER_OWN = OwnRecovery((Probe(0, 8, 0.5), Probe(0, 8, 0.6), Probe(0, 8, 0.5), Probe(0, 8, 0.7)))  # ...never, in 32

# (successes, graded, reference, calibration, own) -> verdict, more wanted. Read as a reviewer
# would: 4 right of 8 from a prefix worth 0.8 is ambiguous on a job where a few questions recover
# often; on a question whose own wrong prefixes never recovered it shows the prefix correct; on one
# whose wrong prefixes end right half the time it shows nothing, and no top-up can change that.
OWN_CASES = [
    (4, 8, 0.8, WIDE, None, "undecided", True),
    (4, 8, 0.8, WIDE, NEVER_OWN, "correct", False),
    (4, 8, 0.8, WIDE, RECOVERS, "undecided", False),
    (8, 8, 0.9, WIDE, RECOVERS, "undecided", False),  # as good as a correct prefix, and still no proof
    (8, 8, 0.9, RARE, RECOVERS, "correct", False),  # a tight job prior is not overturned by 16 rollouts
    (0, 8, 0.5, WIDE, NEVER_OWN, "wrong", False),
    (2, 8, 0.5, Calibration(0.05, 2.0, "calibrated", recovery_model="relative"), NEVER_OWN, "correct", False),
]


@pytest.mark.parametrize(("c", "n", "ref", "cal", "own", "verdict", "more"), OWN_CASES)
def test_a_questions_own_recovery_probes_on_their_case_table(c: int, n: int, ref: float, cal: Calibration,
                                                             own: OwnRecovery | None, verdict: str, more: bool) -> None:
    d = decide(stats(c, n - c), ref, cal, PARAMS, own)
    assert d.verdict == verdict
    assert (d.more > 0) is more


def test_own_probes_that_graded_nothing_change_nothing() -> None:
    empty = OwnRecovery((Probe(0, 0, 0.5), Probe(0, 0, 0.7)))  # every rollout truncated or unparseable
    for cal in (WIDE, RARE, PRIOR):
        for c in range(9):
            assert decide(stats(c, 8 - c), 0.6, cal, PARAMS, empty) == decide(stats(c, 8 - c), 0.6, cal, PARAMS)


def test_own_probes_move_the_verdict_the_way_they_read() -> None:
    # Where the question's wrong prefixes never recovered a success proves more than the job's
    # prior alone says; where they recover half the time, evidence for a correct prefix weighs less.
    for cal in (WIDE, RARE, Calibration(0.1, 4.0, "calibrated", recovery_model="relative")):
        for ref in (0.3, 0.6, 0.9):
            for c in range(1, 9):
                alone = decide(stats(c, 8 - c), ref, cal, PARAMS).score
                assert decide(stats(c, 8 - c), ref, cal, PARAMS, NEVER_OWN).score > alone
                if alone > 0:
                    assert decide(stats(c, 8 - c), ref, cal, PARAMS, RECOVERS).score < alone
            for own in (NEVER_OWN, RECOVERS):
                scores = [decide(stats(c, 16 - c), ref, cal, PARAMS, own).score for c in range(17)]
                assert scores == sorted(scores)


def test_right_answers_after_a_shown_error_are_no_evidence_for_the_prefix() -> None:
    # Half the completions end right, but every one of them through a retraction or a false
    # equation: those are recoveries, so the prefix is judged on the others.
    plain = stats(4, 4)
    flawed = MCStats(n_rollouts=8, n_correct=4, n_wrong=4, n_correct_flawed=4)
    assert decide(plain, 0.8, RARE, PARAMS).verdict == "correct"
    assert decide(flawed, 0.8, RARE, PARAMS).verdict == "wrong"
    assert flawed.value == plain.value == 0.5 and flawed.clean_value == 0.0  # the stored MC is as published
    assert flawed.merged(flawed).n_correct_flawed == 8


def test_where_recovery_differs_widely_between_questions_successes_prove_less() -> None:
    # Same mean recovery, 1 in 20. Spread wide, most questions never recover and a few often do:
    # a prefix with half its completions right may be one of the few (a smaller score), and one
    # with none right is likelier wrong (most questions' wrong prefixes never succeed).
    narrow = Calibration(0.05, 256.0, "calibrated", recovery_model="absolute")
    for ref in (0.5, 0.9):
        assert decide(stats(4, 4), ref, WIDE, PARAMS).score < decide(stats(4, 4), ref, narrow, PARAMS).score
        assert decide(stats(0, 8), ref, WIDE, PARAMS).score < decide(stats(0, 8), ref, narrow, PARAMS).score


def test_the_verdict_rises_with_successes_whatever_the_distribution() -> None:
    for cal in (NEVER, RARE, OFTEN, WIDE, Calibration(0.1, 4.0, "calibrated", recovery_model="relative")):
        for ref in (0.05, 0.3, 0.9):
            scores = [decide(stats(c, 16 - c), ref, cal, PARAMS).score for c in range(17)]
            assert scores == sorted(scores)


def test_the_rule_holds_no_state_and_records_every_number_it_uses() -> None:
    rule = SequentialRule(Labelling.of(), RARE)
    first = [rule.decide(stats(c, 8 - c), 0.6) for c in range(9)]
    for c in range(9):  # deciding in any order, any number of times, changes nothing
        rule.decide(stats(8 - c, c), 0.3)
    assert [rule.decide(stats(c, 8 - c), 0.6) for c in range(9)] == first
    described = json.loads(rule.describe())
    assert set(described) - {"rule", "calibration"} == set(RuleParams.__dataclass_fields__)
    assert described["calibration"]["digest"] == RARE.digest()
    assert RARE.digest() != OFTEN.digest()
    # A question's own probes are an input like the others, and recorded with its labels.
    own = json.loads(SequentialRule(Labelling.of(), RARE).describe(RECOVERS))["own_recovery"]
    assert own == {"probes": 2, "successes": 9, "graded": 16}


@pytest.mark.parametrize("rule", ["paper", "threshold", "sequential"])
def test_all_truncated_evidence_is_undecided_never_a_confident_wrong(rule: str) -> None:
    decided = make_rule(Labelling.of(label_rule=rule)).decide(stats(0, 0, truncated=8), 0.5)
    assert decided.verdict == "undecided"


def test_depth_reference_rises_from_the_root_value_to_one() -> None:
    assert depth_reference(0.25, 0, 4) == pytest.approx(0.25)
    assert depth_reference(0.25, 2, 4) == pytest.approx(0.5)
    assert depth_reference(0.25, 4, 4) == pytest.approx(1.0)


def steps(n: int, bad: int, answer: str) -> str:
    parts = [f"Step {i} {'BAD' if i == bad else 'ok'}." for i in range(1, n + 1)]
    return "\n\n".join(parts) + f" \\boxed{{{answer}}}"


def test_probe_whose_rollouts_were_all_truncated_ends_the_search_undecided() -> None:
    # Every continuation of a non-empty prefix runs out of tokens: no evidence about any prefix.
    policy = ScriptedPolicy(lambda prefix, i: "Step x ok. \\boxed{7}", truncated_fn=lambda prefix, i: prefix != "")
    for rule in ("paper", "sequential"):
        ctx = SearchContext(PROBLEM, policy, BoxedVerifier(), Labelling.of(label_rule=rule), Sampling(), seed=0)
        ctx.dag.root.mc = stats(4, 4)
        rollout = ctx.dag.add_rollout(ctx.dag.root, steps(8, 5, "9"), 30, "wrong")
        located = asyncio.run(locate_first_error(ctx, rollout, StepSplitter("delimiter"), Pool(ctx.search, ctx.rule)))
        assert located.first_error is None and located.stop == "undecided"
        probed = [s for s in ctx.dag.states() if s.decision is not None and s.mc is not None and s.mc.n_rollouts]
        assert probed and all(s.decision.verdict == "undecided" for s in probed)  # type: ignore[union-attr]


def test_empty_continuation_never_marks_its_start_as_the_first_error() -> None:
    # A prefix that already holds a (wrong) final answer: the policy adds nothing, and the full
    # text is graded wrong. Before, its start state was labelled the first error.
    ctx = SearchContext(PROBLEM, ScriptedPolicy(lambda p, i: ""), BoxedVerifier(), Labelling.of(), Sampling(), seed=0)
    ctx.dag.root.mc = stats(4, 4)
    start = ctx.dag.state_for("Step 1 ok.\n\nStep 2 BAD. \\boxed{9}", ctx.dag.root, 0)
    start.mc = stats(7, 1)
    empty = ctx.dag.add_rollout(start, "", 0, "wrong")
    pool = Pool(ctx.search, ctx.rule)
    assert pool.offer([empty]) == 0
    located = asyncio.run(locate_first_error(ctx, empty, StepSplitter("delimiter"), pool))
    assert located.first_error is None and located.stop == "empty" and not start.is_first_error


def test_a_continuation_that_starts_with_a_blank_line_makes_no_whitespace_step() -> None:
    prefix = "Step 1: a.\n\n"
    text = prefix + "\n\nStep 2: b.\n\nStep 3: c."
    cuts = StepSplitter("delimiter").boundaries(text, len(prefix))
    pieces = [text[a:b] for a, b in zip([len(prefix), *cuts], [*cuts, len(text)])]
    assert len(pieces) == 2 and all(p.strip() for p in pieces)


def run_simulated(spec: SimulatedSpec, search: Labelling, n: int = 12):  # type: ignore[no-untyped-def]
    problems = simulated_problems(n, spec, seed=4)
    policy = SimulatedPolicy(spec, seed=4)

    async def go():  # type: ignore[no-untyped-def]
        return await asyncio.gather(*(run_search(p, policy, BoxedVerifier(), search, Sampling(), seed=4) for p in problems))

    return problems, asyncio.run(go())


def test_empty_and_blank_started_completions_leave_labels_right() -> None:
    spec = SimulatedSpec(min_steps=4, max_steps=8, success_rate=(0.5, 0.9), recover_rate=0.0, empty_rate=0.2, blank_start_rate=0.5)
    problems, results = run_simulated(spec, Labelling.of(max_searches=20, screen_samples=16))
    located = [(p, s) for p, r in zip(problems, results) for s in r.steps if s.is_first_error]
    assert len(located) >= 20
    for problem, s in located:
        assert s.step_text.strip(), "a whitespace-only step was labelled"
        off = first_error_offset(problem.question, s.prefix + s.step_text, spec)
        assert off is not None and s.char_start <= off < s.char_end
    assert all(s.step_text.strip() for r in results for s in r.steps)


def test_a_question_whose_only_failures_are_truncations_is_not_called_all_correct() -> None:
    policy = ScriptedPolicy(lambda prefix, i: "A.\n\nB. \\boxed{7}", truncated_fn=lambda prefix, i: i % 2 == 0)
    r = asyncio.run(run_search(PROBLEM, policy, BoxedVerifier(), Labelling.of(screen_samples=8), Sampling(), seed=0))
    assert r.status == "skipped" and r.skip_reason == "only_invalid_failures"


class FailingPolicy(ScriptedPolicy):
    """Answers the first `ok_calls` requests, then raises: a bug or a bad sample mid-search."""

    def __init__(self, ok_calls: int) -> None:
        super().__init__(lambda prefix, i: "")
        self.inner = SimulatedPolicy(SimulatedSpec(min_steps=6, max_steps=6, success_rate=(0.5, 0.5)), seed=0)
        self.ok_calls = ok_calls

    async def generate(self, question, prefix, n, sampling):  # type: ignore[no-untyped-def]
        if len(self.calls) >= self.ok_calls:
            raise RuntimeError("policy returned garbage on call %d" % len(self.calls))
        self.calls.append((prefix, n))
        return await self.inner.generate(question, prefix, n, sampling)


def test_a_failed_problem_keeps_the_labels_it_paid_for_and_says_why() -> None:
    problem = simulated_problems(1, SimulatedSpec(min_steps=6, max_steps=6, success_rate=(0.5, 0.5)), seed=0)[0]
    r = asyncio.run(run_search(problem, FailingPolicy(ok_calls=5), BoxedVerifier(), Labelling.of(screen_samples=16), Sampling(), seed=0))
    assert r.status == "failed" and r.stop_reason == "error"
    assert "policy returned garbage on call 5" in (r.error or "")
    assert r.steps and r.n_rollouts >= 16 + 8  # screening and at least one probe were kept


