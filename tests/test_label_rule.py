"""The label rule and the edge cases a real policy produces: each driven by a policy that makes it."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from test_search_support import BoxedVerifier, ScriptedPolicy

from apsgen.config import SearchSpec, SimulatedSpec
from apsgen.policy.base import Sampling
from apsgen.policy.simulated import SimulatedPolicy, first_error_offset, simulated_problems
from apsgen.problem import Problem
from apsgen.search import run_search
from apsgen.search.binary_search import locate_first_error
from apsgen.search.context import SearchContext
from apsgen.search.label_rule import SequentialRule, depth_reference, job_recovery_prior, make_rule, with_job_prior
from apsgen.search.mc_stats import MCStats
from apsgen.search.selection import Pool
from apsgen.search.steps import StepSplitter
from apsgen.search.tree import PrefixDAG

PROBLEM = Problem(id="p1", question="q", answer="7")


def stats(correct: int, wrong: int, truncated: int = 0) -> MCStats:
    return MCStats(n_rollouts=correct + wrong + truncated, n_correct=correct, n_wrong=wrong, n_truncated=truncated)


def test_sequential_rule_decides_clear_cases_and_asks_for_more_on_close_ones() -> None:
    rule = SequentialRule(SearchSpec())
    assert rule.decide(stats(6, 2), 0.7).verdict == "correct"
    assert rule.decide(stats(0, 8), 0.9).verdict == "wrong"
    close = rule.decide(stats(1, 7), 0.5)  # one lucky rollout: a wrong prefix's or a correct one's?
    assert close.verdict == "undecided" and close.more == 8
    assert rule.decide(stats(1, 31), 0.5).verdict == "wrong"  # more evidence settles it
    # At k_max it stops asking and stays undecided rather than guess.
    at_k_max = rule.decide(stats(10, 22), 0.9)
    assert at_k_max.verdict == "undecided" and at_k_max.more == 0


def test_a_probe_close_to_a_decision_is_topped_up_with_fewer_than_k_rollouts() -> None:
    rule = SequentialRule(SearchSpec(k=16, k_max=64))
    far = rule.decide(stats(1, 7), 0.5)  # evidence points nowhere yet: a full batch
    near = rule.decide(stats(0, 6), 0.6)  # two more failures would settle it
    assert far.more == 16
    assert near.verdict == "undecided" and 4 <= near.more < 16


def learned_rule(recovery: float, states: int = 40, seed: int = 0) -> SequentialRule:
    """A sequential rule that has decided `states` states of one question: half wrong prefixes that
    reach the right answer at `recovery`, half correct ones at their reference value."""
    rng = random.Random(seed)
    rule = SequentialRule(SearchSpec())
    for i in range(states):
        ref = 0.3 + 0.6 * rng.random()
        p = ref if i % 2 else recovery
        c = sum(rng.random() < p for _ in range(16))
        mc = stats(c, 16 - c)
        rule.observe(mc, rule.decide(mc, ref))
    rule.consolidate()
    return rule


def test_the_recovery_rate_is_learned_per_question_and_sets_how_much_evidence_a_label_needs() -> None:
    never = learned_rule(recovery=0.0)
    often = learned_rule(recovery=0.2)
    assert never.recovery.rate < 0.02
    assert 0.12 < often.recovery.rate < 0.3
    # One right completion in 8 from a prefix worth ~0.8: where the policy never recovers it shows
    # the prefix is still correct (as the paper's rule says); where it recovers one time in five,
    # it is no evidence either way.
    one_in_eight = stats(2, 6)
    assert never.decide(one_in_eight, 0.8).verdict == "correct"
    assert often.decide(one_in_eight, 0.8).verdict != "correct"


def test_the_recovery_fit_is_refreshed_when_the_evidence_doubles_so_its_cost_stays_linear() -> None:
    rule = SequentialRule(SearchSpec())
    fits = 0
    fit = rule.recovery.fit

    def counting_fit() -> None:
        nonlocal fits
        fits += 1
        fit()

    rule.recovery.fit = counting_fit  # type: ignore[method-assign]
    for _ in range(1000):
        mc = stats(0, 8)
        rule.observe(mc, rule.decide(mc, 0.7))
    assert fits == 10  # after 1, 2, 4, ..., 512 states: about 2x the states' worth of work


@pytest.mark.parametrize("rule", ["paper", "threshold", "sequential"])
def test_all_truncated_evidence_is_undecided_never_a_confident_wrong(rule: str) -> None:
    decided = make_rule(SearchSpec(label_rule=rule)).decide(stats(0, 0, truncated=8), 0.5)
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
        ctx = SearchContext(PROBLEM, policy, BoxedVerifier(), SearchSpec(label_rule=rule), Sampling(), seed=0)
        ctx.dag.root.mc = stats(4, 4)
        rollout = ctx.dag.add_rollout(ctx.dag.root, steps(8, 5, "9"), 30, "wrong")
        located = asyncio.run(locate_first_error(ctx, rollout, StepSplitter("delimiter"), Pool(ctx.search, ctx.rule)))
        assert located.first_error is None and located.stop == "undecided"
        probed = [s for s in ctx.dag.states() if s.decision is not None and s.mc is not None and s.mc.n_rollouts]
        assert probed and all(s.decision.verdict == "undecided" for s in probed)  # type: ignore[union-attr]


def test_empty_continuation_never_marks_its_start_as_the_first_error() -> None:
    # A prefix that already holds a (wrong) final answer: the policy adds nothing, and the full
    # text is graded wrong. Before, its start state was labelled the first error.
    ctx = SearchContext(PROBLEM, ScriptedPolicy(lambda p, i: ""), BoxedVerifier(), SearchSpec(), Sampling(), seed=0)
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


def run_simulated(spec: SimulatedSpec, search: SearchSpec, n: int = 12):  # type: ignore[no-untyped-def]
    problems = simulated_problems(n, spec, seed=4)
    policy = SimulatedPolicy(spec, seed=4)

    async def go():  # type: ignore[no-untyped-def]
        return await asyncio.gather(*(run_search(p, policy, BoxedVerifier(), search, Sampling(), seed=4) for p in problems))

    return problems, asyncio.run(go())


def test_empty_and_blank_started_completions_leave_labels_right() -> None:
    spec = SimulatedSpec(min_steps=4, max_steps=8, success_rate=(0.5, 0.9), recover_rate=0.0, empty_rate=0.2, blank_start_rate=0.5)
    problems, results = run_simulated(spec, SearchSpec(max_searches=20, screen_samples=16))
    located = [(p, s) for p, r in zip(problems, results) for s in r.steps if s.is_first_error]
    assert len(located) >= 20
    for problem, s in located:
        assert s.step_text.strip(), "a whitespace-only step was labelled"
        off = first_error_offset(problem.question, s.prefix + s.step_text, spec)
        assert off is not None and s.char_start <= off < s.char_end
    assert all(s.step_text.strip() for r in results for s in r.steps)


def test_a_question_whose_only_failures_are_truncations_is_not_called_all_correct() -> None:
    policy = ScriptedPolicy(lambda prefix, i: "A.\n\nB. \\boxed{7}", truncated_fn=lambda prefix, i: i % 2 == 0)
    r = asyncio.run(run_search(PROBLEM, policy, BoxedVerifier(), SearchSpec(screen_samples=8), Sampling(), seed=0))
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
    r = asyncio.run(run_search(problem, FailingPolicy(ok_calls=5), BoxedVerifier(), SearchSpec(screen_samples=16), Sampling(), seed=0))
    assert r.status == "failed" and r.stop_reason == "error"
    assert "policy returned garbage on call 5" in (r.error or "")
    assert r.steps and r.n_rollouts >= 16 + 8  # screening and at least one probe were kept


def test_a_search_learns_how_often_its_policy_recovers_and_stores_it_with_the_rule() -> None:
    learned = {}
    for recover in (0.0, 0.3):
        spec = SimulatedSpec(min_steps=6, max_steps=10, success_rate=(0.5, 0.8), recover_rate=recover)
        _, results = run_simulated(spec, SearchSpec(max_searches=20, screen_samples=16), n=6)
        rules = [json.loads(r.label_rule) for r in results if r.status == "searched"]
        assert rules and all(rule["rule"] == "sequential" and rule["learned"]["states"] > 0 for rule in rules)
        learned[recover] = sorted(rule["learned"]["recovery_rate"] for rule in rules)[len(rules) // 2]
    assert learned[0.0] < 0.02 < 0.1 < learned[0.3]


def test_correct_prefixes_of_low_value_are_not_mistaken_for_recovery() -> None:
    # A question the policy rarely solves: its correct prefixes succeed 1-4 times in 32 (reference
    # 0.09), its wrong prefixes never. The fit must not swap the two components (recovery ~0.06 from
    # the correct prefixes, the 0-of-30 states "correct prefixes of value ~0"): that made every
    # probe of a correct prefix there need more than k_max rollouts.
    rule = SequentialRule(SearchSpec())
    for _ in range(15):
        rule.recovery.observe(0, 30, 0.09)
    for c in (1, 2, 3, 2, 1, 3, 2, 4):
        rule.recovery.observe(c, 32, 0.09)
    rule.consolidate()
    assert rule.recovery.rate < 0.01 and rule.recovery.scale > 0.5
    assert rule.decide(stats(3, 29), 0.09).verdict == "correct"  # undecided at k_max if swapped


def test_the_pool_reconsiders_refused_states_once_the_rule_has_learned() -> None:
    search = SearchSpec(k=8)
    rule = SequentialRule(search)
    pool = Pool(search, rule)
    dag = PrefixDAG()
    state = dag.state_for("s", dag.root, 0)
    state.mc = stats(4, 4)
    rollouts = [dag.add_rollout(state, f"w{i}", 10, "wrong") for i in range(4)]
    state.decision = rule.decide(state.mc, 0.75)
    # Against the prior (a wrong prefix recovers 1 time in 20) 4 right of 8 is a correct verdict but
    # not the stronger evidence the pool asks for.
    assert state.decision.verdict == "correct"
    assert pool.offer(rollouts) == 0
    before = rule.version()
    for _ in range(40):  # this question's wrong prefixes never recover
        rule.observe(stats(0, 8), rule.decide(stats(0, 8), 0.75))
    assert rule.version() != before
    assert pool.reconsider(dag.states()) == 4
    assert pool.reconsider(dag.states()) == 0  # pending pairs are not doubled


# A question whose correct prefixes all succeed about 1 time in 10, far below their reference (a hard
# step late in the solution), and whose wrong prefixes never succeed: from this question alone,
# "wrong, recovering 1 time in 10" explains the cluster as well as "correct" does.
HARD_LATE = [(0, 18, 0.354), (0, 30, 0.21), (0, 19, 0.354), (0, 29, 0.21), (0, 17, 0.354)] + [
    (c, 30, ref) for c, ref in [(6, 0.354), (1, 0.354), (3, 0.21), (3, 0.354), (2, 0.354), (2, 0.21), (5, 0.354),
                                (5, 0.354), (4, 0.21), (3, 0.354), (4, 0.354), (3, 0.354), (2, 0.354), (1, 0.21)]
]


def fitted(search: SearchSpec) -> SequentialRule:
    rule = SequentialRule(search)
    for c, n, ref in HARD_LATE:
        rule.recovery.observe(c, n, ref)
    rule.consolidate()
    return rule


def test_the_job_prior_is_the_median_of_what_its_first_questions_learned() -> None:
    search = SearchSpec(job_prior_questions=4)

    def described(rate: float, states: int) -> str:
        return json.dumps({"rule": "sequential", "learned": {"recovery_rate": rate, "correct_scale": 1.0, "states": states}})

    # One question fooled into a high rate does not move the median; a question that learned nothing
    # (screened out, or failed: no rule stored) does not count.
    rows = [described(0.001, 40), described(0.09, 36), described(0.002, 25), described(0.3, 0), None]
    assert job_recovery_prior(rows, search) == pytest.approx(0.002)
    assert job_recovery_prior(["", "not json", described(0.01, 3)], search) is None  # under half learned
    assert job_recovery_prior([described(0.0, 9)] * 4, search) == pytest.approx(1e-4)  # never a zero prior
    assert job_recovery_prior(rows, SearchSpec(job_prior_questions=0)) is None
    assert job_recovery_prior(rows, SearchSpec(label_rule="paper")) is None
    later = with_job_prior(search, 0.002)
    params = json.loads(SequentialRule(later).describe())
    assert (params["recovery_prior"], params["recovery_prior_weight"]) == (0.002, search.job_prior_weight)
    assert with_job_prior(search, None) is search


def test_a_job_prior_tells_a_hard_step_from_recovery_where_one_question_cannot() -> None:
    alone = fitted(SearchSpec())
    assert alone.recovery.rate > 0.03  # the cluster at ~0.1 read as recovery
    assert alone.decide(stats(3, 27), 0.354).verdict != "correct"
    with_job = fitted(with_job_prior(SearchSpec(), 0.001))  # the job's other questions never recover
    assert with_job.recovery.rate < 0.01
    assert with_job.decide(stats(3, 27), 0.354).verdict == "correct"
    assert with_job.decide(stats(0, 32), 0.354).verdict == "wrong"


def test_at_k_max_a_rule_that_knows_recovery_is_rare_takes_the_likelier_verdict() -> None:
    # A prefix of low value (reference 0.06) that failed all 32 times: where wrong prefixes recover
    # 1 time in 20 that is no evidence either way; where they almost never do it is far likelier wrong.
    recovering = SequentialRule(SearchSpec())
    assert recovering.decide(stats(0, 32), 0.06).verdict == "undecided"
    rare = SequentialRule(with_job_prior(SearchSpec(), 0.001))
    assert rare.decide(stats(0, 24), 0.06).verdict == "undecided"  # below k_max it asks for more
    assert rare.decide(stats(0, 32), 0.06).verdict == "wrong"
    assert rare.decide(stats(1, 31), 0.06).verdict == "correct"
    assert rare.decide(stats(0, 0, truncated=32), 0.06).verdict == "undecided"  # nothing graded
