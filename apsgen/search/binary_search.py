"""Binary search for the first error of one wrong rollout (OmegaPRM §3.2).

The span is the rollout's steps after its start state s (a state the label rule found correct, or
the root). Each probe asks the label rule about the prefix that ends at the middle step: `correct`
moves the search right, `wrong` left. The wrong solution itself is wrong without rollouts, and so
is a step stating a false equation; a step that only restates the question is skipped
(`apsgen.label.text`, off with `steps.checks: false`). A probe
the rule leaves `undecided` (too little evidence within `k_max`, or every rollout truncated or
unparseable) ends the search without a label: a guess there would be a label nobody can trust.
Rollouts made by probes are offered to the pool.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from apsgen.label.decision import by_definition, by_restatement, by_text, settle
from apsgen.label.evidence import MCStats
from apsgen.label.rule import depth_reference
from apsgen.search.context import SearchContext
from apsgen.search.selection import Pool
from apsgen.search.steps import StepSplitter
from apsgen.search.tree import Rollout, State

log = logging.getLogger(__name__)

StopReason = Literal["located", "budget", "undecided", "empty"]


@dataclass
class Located:
    rollout: Rollout | None
    first_error: State | None  # None: stopped early (see `stop`)
    probes: int  # MC estimates paid for (cached states are free)
    stop: StopReason = "located"


def rollout_path(ctx: SearchContext, rollout: Rollout, splitter: StepSplitter) -> list[State]:
    """The states after each step of the rollout, the last one being the full solution.

    An empty or blank continuation adds no step, so its path is empty (it cannot hold an error)."""
    if not rollout.adds_text:
        return []
    start = rollout.state
    bounds = splitter.boundaries(rollout.full_text, len(start.prefix))
    return ctx.dag.path(start, rollout.text, bounds)


def reference_for(ctx: SearchContext, state: State, path: list[State], anchor: State | None = None) -> float | None:
    """The value a correct prefix at `state`'s depth is expected to have on this path, judged from
    `anchor`, its nearest ancestor known to be correct (default: the root). Values are clean ones
    (`MCStats.clean_value`), as the label rule counts its evidence."""
    if anchor is None or anchor.mc is None or anchor.mc.clean_value is None:
        anchor = ctx.dag.root
    value = anchor.mc.clean_value if anchor.mc is not None else None
    return depth_reference(value, state.depth - anchor.depth, path[-1].depth - anchor.depth)


def mark_wrong_solution(state: State) -> None:
    """The last state of a wrong solution: MC 0 by definition, no rollout needed."""
    if state.mc is None:
        state.mc = MCStats.known(correct=False)
    if state.decision is None:
        settle(state, by_definition(correct=False))


def first_text_error(ctx: SearchContext, path: list[State]) -> int | None:
    """Index of the first state of `path` whose own step shows an error by its text (a false
    equation, a retraction: `SearchContext.step_error`)."""
    return next((i for i, state in enumerate(path) if ctx.step_error(state) is not None), None)


async def bisect_path(
    ctx: SearchContext, path: list[State], pool: Pool | None, rollout: Rollout | None = None,
    *, ends_wrong: bool = True,
) -> Located:
    """Find the first wrong state of `path`, whose start (the parent of path[0]) is correct and
    whose last state is wrong (decided, or a wrong solution: `ends_wrong`) or whose steps state a
    false equation. The span ends at the first false equation, which is wrong with certainty; steps
    that only restate the question are never probed and cannot be the first error (their prefix is
    right exactly when the one before is). Invariant: first error in candidates (lo, hi]."""
    if not path:
        return Located(rollout, None, 0, "empty")
    if ends_wrong:
        mark_wrong_solution(path[-1])
    false_at = first_text_error(ctx, path)
    if false_at is not None:
        path = path[: false_at + 1]
        settle(path[-1], by_text(ctx.step_error(path[-1]) or "arithmetic"))
    elif not ends_wrong:
        return Located(rollout, None, 0, "empty")
    # Positions that can hold the first error: every step but restatements, and always the last.
    cands = [i for i in range(len(path) - 1) if not ctx.restates(path[i])] + [len(path) - 1]
    lo, hi = -1, len(cands) - 1  # cands[hi] is wrong; cands[lo] (or the start) is correct
    probes = 0
    start = path[0].parent
    while hi - lo > 1:
        mid = (lo + hi) // 2
        state = path[cands[mid]]
        anchor = path[cands[lo]] if lo >= 0 else start
        if state.mc is None and not ctx.wrong_by_text(state):
            if not ctx.can_afford(ctx.search.k):
                log.debug("problem %s: rollout budget spent mid-search", ctx.problem.id)
                return Located(rollout, None, probes, "budget")
            probes += 1
        decision = await ctx.decide(state, reference_for(ctx, state, path, anchor))
        if pool is not None:
            pool.offer(state.rollouts)
        if decision.verdict == "undecided":
            return Located(rollout, None, probes, "undecided")
        if decision.verdict == "correct":
            lo = mid
        else:
            hi = mid
    first = path[cands[hi]]
    first.is_first_error = True
    for state in path[cands[lo] + 1 if lo >= 0 else 0 : cands[hi]]:
        if state.decision is None:  # restatements between a correct prefix and the first error
            settle(state, by_restatement())
    return Located(rollout, first, probes)


async def verify_right_answer(ctx: SearchContext, path: list[State]) -> tuple[str, Located | None]:
    """A solution that reached the right answer, checked for a wrong step it may have recovered
    from. A recovery can come at any later step (silently: the path carries on from the right
    value), after which every prefix is as good as a correct one; so every prefix before its last
    step is judged in order, each against the last one decided correct, restatements skipped. All
    correct: the solution is all-good on evidence (`no_error`). The first decided wrong is its first
    error (`located`: the ones before it are correct). Else `undecided`, `budget`, or `short` (a
    one-step solution has no prefix to judge)."""
    if len(path) < 2:
        return "short", None
    anchor: State | None = None
    probes = 0
    for i, state in enumerate(path[:-1]):
        if ctx.restates(state):
            continue
        if state.mc is None and not ctx.wrong_by_text(state):
            if not ctx.can_afford(ctx.search.k):
                return "budget", None
            probes += 1
        decision = await ctx.decide(state, reference_for(ctx, state, path, anchor))
        if decision.verdict == "undecided":
            return "undecided", None
        if decision.verdict == "wrong":
            state.is_first_error = True
            begin = path.index(anchor) + 1 if anchor is not None else 0
            for between in path[begin:i]:
                if between.decision is None:  # restatements after the last correct prefix
                    settle(between, by_restatement())
            return "located", Located(None, state, probes)
        anchor = state
    return "no_error", None


async def locate_first_error(
    ctx: SearchContext, rollout: Rollout, splitter: StepSplitter, pool: Pool | None,
    path: list[State] | None = None,
) -> Located:
    """The first error of a wrong rollout, or of a right one whose steps state a false equation.
    `path`: the rollout's `rollout_path`, when the caller has it already."""
    if path is None:
        path = rollout_path(ctx, rollout, splitter)
    return await bisect_path(ctx, path, pool, rollout, ends_wrong=not rollout.is_correct)


def has_text_error(ctx: SearchContext, rollout: Rollout, splitter: StepSplitter) -> bool:
    """A rollout with a right final answer reached through a step that shows an error by its text
    (a false equation, a retraction): not an all-good path."""
    return rollout.adds_text and first_text_error(ctx, rollout_path(ctx, rollout, splitter)) is not None


async def first_wrong_step(
    ctx: SearchContext, path: list[State], ends_wrong: bool = True
) -> tuple[State | None, bool]:
    """Judge every step of `path` in order; (first wrong state or None, budget ran out). A step
    that only restates the question has its parent's verdict (correct, or the walk had stopped)."""
    if ends_wrong:
        mark_wrong_solution(path[-1])
    for i, state in enumerate(path):
        if i < len(path) - 1 and ctx.restates(state):
            settle(state, by_restatement())
            continue
        if state.mc is None and not ctx.wrong_by_text(state) and not ctx.can_afford(ctx.search.k):
            return None, True
        decision = await ctx.decide(state, reference_for(ctx, state, path))
        if decision.verdict == "undecided":
            return None, False
        if decision.verdict == "wrong":
            return state, False
    return None, False
