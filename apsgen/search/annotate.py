"""Labelling a given solution (`search.mode: annotate`): the policy is only the completer.

The solution comes from the dataset (a list of steps, or a text split by the job's step rule), so
nothing is screened and no pool is kept. What the search needs from the policy:

1. The root's value: `screen_samples` rollouts of the empty prefix, the question's solve rate. It
   is the label rule's reference (a correct prefix's expected value at each depth follows from
   it). A completer that never solves the question (root MC 0) cannot tell a correct prefix from
   a wrong one, so the solution is skipped (`all_wrong`) rather than labelled by noise.
2. The solution's own final answer, checked against the gold answer by the verifier.
   - Wrong (or no answer): the full solution is wrong by definition, and the first wrong step is
     searched for along its steps: a binary search with the label rule (`search.annotate:
     binary`) or every step's verdict in order (`per_step`, Math-Shepherd's way).
   - Right: a right answer does not make every step right (a lucky or unjustified step can still
     end well). The prefix without the last step is judged first: `correct` means no step is
     wrong (a wrong step before it would have made it wrong), `wrong` means the first error lies
     before the last step and is searched for there, `undecided` leaves the solution unlabelled.

A probe the rule leaves undecided ends the search without a label, as in the other modes.
"""

from __future__ import annotations

import logging

from apsgen.label.decision import by_definition, settle
from apsgen.label.evidence import MCStats
from apsgen.problem import join_steps
from apsgen.reasoning import answer_part
from apsgen.search.binary_search import bisect_path, first_text_error, first_wrong_step, reference_for
from apsgen.search.context import SearchContext, outcome_name
from apsgen.search.labels import searched_result, splitter_for
from apsgen.search.result import ProblemResult
from apsgen.search.tree import State

log = logging.getLogger(__name__)


def given_path(ctx: SearchContext) -> list[State]:
    """The given solution as states of the DAG, one per step (the last is the full solution)."""
    problem = ctx.problem
    if problem.steps is not None:
        text, bounds = join_steps(problem.steps)
    elif problem.solution is not None:
        text = problem.solution
        bounds = splitter_for(ctx, ctx.policy.count_tokens(text)).boundaries(text)
    else:
        raise ValueError(
            f"problem {problem.id} has no solution to annotate (set dataset.steps_column or dataset.solution_column)"
        )
    return ctx.dag.path(ctx.dag.root, text, bounds)


async def _locate(ctx: SearchContext, path: list[State], ends_wrong: bool = True) -> tuple[State | None, str]:
    """(first wrong state or None, stop) for a path whose last state is wrong (`ends_wrong`) or
    that states a false equation."""
    if ctx.search.annotate == "per_step":
        first, budget = await first_wrong_step(ctx, path, ends_wrong)
        if budget:
            return None, "budget"
        return first, "located" if first is not None else "undecided"
    located = await bisect_path(ctx, path, pool=None, ends_wrong=ends_wrong)
    return located.first_error, located.stop


async def run_annotate(ctx: SearchContext) -> ProblemResult:
    search = ctx.search
    path = given_path(ctx)
    root = ctx.dag.root
    settle(root, by_definition(correct=True))  # the empty prefix cannot hold an error
    final = path[-1]
    checked = await ctx.verifier.acheck_batch([answer_part(final.prefix, ctx.settings.thinking_end)],
                                              ctx.problem.answer, [False])
    outcome = outcome_name(checked[0].outcome)
    extra = {"solution_source": "given", "solution_outcome": outcome, "n_searches": 1}

    fresh = await ctx.sample(root, search.screen_samples)
    root.mc = MCStats.from_rollouts(fresh, search.invalid_rollouts)
    if not root.mc.n_correct:
        # Every prefix would read MC 0: no evidence separates a correct step from a wrong one.
        result = searched_result(ctx, mode="annotate", stop_reason="done", **extra)
        result.status = "skipped"
        result.skip_reason = "all_wrong"
        result.steps = []
        result.n_first_errors = 0
        return _with_root(result, root)

    first: State | None = None
    stop = "located"
    if outcome == "correct" and first_text_error(ctx, path) is not None:
        # a right answer through a false equation or a retraction: the error is certain, search before it
        first, stop = await _locate(ctx, path, ends_wrong=False)
    elif outcome == "correct":
        if len(path) == 1:
            stop = "no_error"
        else:
            before_last = path[-2]
            if before_last.mc is None and not ctx.can_afford(search.k):
                stop = "budget"
            else:
                decision = await ctx.decide(before_last, reference_for(ctx, before_last, path))
                if decision.verdict == "correct":
                    stop = "no_error"
                elif decision.verdict == "wrong":
                    first, stop = await _locate(ctx, path[:-1])
                else:
                    stop = "undecided"
        if stop == "no_error":
            final.mc = MCStats.known(correct=True)
            settle(final, by_definition(correct=True))
    else:
        first, stop = await _locate(ctx, path)
    if first is not None:
        first.is_first_error = True
    result = searched_result(
        ctx,
        mode="annotate",
        n_undecided_searches=int(stop == "undecided"),
        stop_reason="rollout_budget" if stop == "budget" else stop,
        **extra,
    )
    return _with_root(result, root)


def _with_root(result: ProblemResult, root: State) -> ProblemResult:
    assert root.mc is not None
    result.screen_samples = root.mc.n_rollouts
    result.screen_correct = root.mc.n_correct
    result.root_n_correct = root.mc.n_correct
    result.root_n_rollouts = root.mc.n_rollouts
    result.root_mc = root.mc.value
    result.root_mc_source = "fresh"
    return result
