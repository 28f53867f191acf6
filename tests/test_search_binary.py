"""Binary search for the first error: position cases, one-step solutions, recovered rollouts."""

from __future__ import annotations

import asyncio

from search_support import BoxedVerifier, ScriptedPolicy

from apsgen.config import Labelling
from apsgen.label.evidence import MCStats
from apsgen.policy.base import Sampling
from apsgen.problem import Problem
from apsgen.search.binary_search import locate_first_error
from apsgen.search.context import SearchContext
from apsgen.search.selection import Pool
from apsgen.search.steps import StepSplitter

PROBLEM = Problem(id="p1", question="q", answer="7")
SPLIT = StepSplitter("delimiter")


def solution(n_steps: int, bad: set[int], answer: str) -> str:
    """Steps 1..n as paragraphs; the last one carries the boxed answer."""
    steps = [f"Step {i} {'BAD' if i in bad else 'ok'}." for i in range(1, n_steps + 1)]
    steps[-1] += f" \\boxed{{{answer}}}"
    return "\n\n".join(steps)


def world(recover_every: int = 0):  # type: ignore[no-untyped-def]
    """A clean prefix always finishes right; a prefix with a BAD step finishes wrong, except that
    sample 0 of each request "recovers" when recover_every=1 (an answer-correct, process-wrong rollout)."""

    def cont(prefix: str, i: int) -> str:
        if "BAD" not in prefix or (recover_every and i % 8 == 0):
            return "Step x ok. \\boxed{7}"
        return "Step x ok. \\boxed{9}"

    return ScriptedPolicy(cont)


def run_locate(text: str, policy: ScriptedPolicy, **spec: object):  # type: ignore[no-untyped-def]
    # The paper's rule unless a test says otherwise: these tests pin its faithful behaviour.
    ctx = SearchContext(PROBLEM, policy, BoxedVerifier(), Labelling.of(**{"label_rule": "paper", **spec}), Sampling(), seed=0)
    root = ctx.dag.root
    root.mc = MCStats(n_rollouts=8, n_correct=4, n_wrong=4)
    rollout = ctx.dag.add_rollout(root, text, len(text.split()), "wrong")
    pool = Pool(ctx.search, ctx.rule)
    located = asyncio.run(locate_first_error(ctx, rollout, SPLIT, pool))
    return ctx, located


def test_first_error_at_step_one() -> None:
    ctx, located = run_locate(solution(8, {1, 5}, "9"), world())
    assert located.first_error is not None
    assert located.first_error.depth == 1
    assert located.first_error.step_text.startswith("Step 1 BAD")
    assert located.probes == 3  # log2(8) probes, all MC = 0


def test_first_error_at_last_step_is_the_wrong_solution_itself() -> None:
    ctx, located = run_locate(solution(8, {8}, "9"), world())
    state = located.first_error
    assert state is not None and state.depth == 8
    assert state.mc is not None and state.mc.source == "wrong_solution" and state.mc.n_rollouts == 0
    assert located.probes == 3
    # The solution itself was never sent to the policy.
    assert all(p != state.prefix for p, _ in ctx.policy.calls)


def test_middle_error_and_probe_prefixes_end_on_step_boundaries() -> None:
    ctx, located = run_locate(solution(10, {6}, "9"), world())
    assert located.first_error is not None and located.first_error.depth == 6
    for prefix, n in ctx.policy.calls:
        assert n == 8 and prefix.endswith("\n\n")


def test_one_step_solution_needs_no_probe() -> None:
    ctx, located = run_locate("All at once: \\boxed{9}", world())
    assert located.probes == 0 and ctx.policy.calls == []
    assert located.first_error is not None and located.first_error.depth == 1


def test_answer_correct_but_process_wrong_rollout() -> None:
    # A recovered rollout is graded correct, so it never enters the pool to be searched...
    ctx = SearchContext(PROBLEM, world(), BoxedVerifier(), Labelling.of(label_rule="paper"), Sampling(), seed=0)
    ctx.dag.root.mc = MCStats(n_rollouts=8, n_correct=4, n_wrong=4)
    recovered = ctx.dag.add_rollout(ctx.dag.root, solution(6, {2}, "7"), 20, "correct")
    pool = Pool(ctx.search, ctx.rule)
    assert pool.offer([recovered]) == 0
    # ...but recoveries in probes make a wrong prefix look right (MC = 1/8 > 0): the faithful
    # search then places the error too late. mc_threshold = 1/k reads 1/8 as "wrong".
    _, faithful = run_locate(solution(8, {3}, "9"), world(recover_every=1))
    assert faithful.first_error is not None and faithful.first_error.depth > 3
    _, guarded = run_locate(solution(8, {3}, "9"), world(recover_every=1), label_rule="threshold", mc_threshold=0.125)
    assert guarded.first_error is not None and guarded.first_error.depth == 3
    # The sequential rule needs no threshold: 1 right in 8 from a prefix whose depth expects about
    # half is a wrong prefix's luck.
    _, sequential = run_locate(solution(8, {3}, "9"), world(recover_every=1), label_rule="sequential")
    assert sequential.first_error is not None and sequential.first_error.depth == 3


def test_probe_rollouts_join_the_pool_only_from_uncertain_states() -> None:
    def cont(prefix: str, i: int) -> str:  # clean prefixes: half right, half wrong
        if "BAD" in prefix:
            return "\\boxed{9}"
        return "Step x. \\boxed{7}" if i % 2 else "Step y.\n\nStep z. \\boxed{9}"

    ctx = SearchContext(PROBLEM, ScriptedPolicy(cont), BoxedVerifier(), Labelling.of(label_rule="paper"), Sampling(), seed=0)
    ctx.dag.root.mc = MCStats(n_rollouts=8, n_correct=4, n_wrong=4)
    rollout = ctx.dag.add_rollout(ctx.dag.root, solution(8, {7}, "9"), 30, "wrong")
    pool = Pool(ctx.search, ctx.rule)
    located = asyncio.run(locate_first_error(ctx, rollout, SPLIT, pool))
    assert located.first_error is not None and located.first_error.depth == 7
    assert len(pool) > 0
    assert all(r.is_wrong and 0 < r.state.mc.value < 1 for r in pool)  # type: ignore[union-attr]
