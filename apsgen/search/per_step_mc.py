"""The per-step Monte Carlo baseline (Math-Shepherd style), the yardstick for OmegaPRM's efficiency.

After the same screening, every wrong screening solution is split into steps and every step
prefix is judged by the label rule (the last step's is the solution's own verdict). The first
step the rule finds wrong, after steps it found correct, is the located first error; a step it
leaves undecided before that ends the solution without a label. Correct solutions are not
annotated: they have no first error to locate, and annotating them would only make the baseline
look costlier. Identical prefixes are one state here too, so neither mode pays twice.
"""

from __future__ import annotations

import logging

from apsgen.label.decision import by_definition, settle
from apsgen.search.binary_search import first_wrong_step, rollout_path
from apsgen.search.context import SearchContext
from apsgen.search.labels import make_splitter, searched_result, skipped_result
from apsgen.search.own_recovery import probe_own_recovery, wants_own_recovery
from apsgen.search.result import ProblemResult
from apsgen.search.screening import screen

log = logging.getLogger(__name__)


async def run_per_step_mc(ctx: SearchContext) -> ProblemResult:
    search = ctx.search
    screening = await screen(ctx)
    if screening.skip_reason is not None:
        return skipped_result(ctx, screening, "per_step_mc")
    splitter = make_splitter(ctx, screening)
    ctx.dag.root.mc = screening.stats
    settle(ctx.dag.root, by_definition(correct=True))
    if wants_own_recovery(ctx):
        await probe_own_recovery(ctx, screening.rollouts, splitter)
    solutions = [r for r in screening.rollouts if r.is_wrong and r.adds_text][: search.max_searches]
    n_annotated = 0
    undecided = 0
    stop = "done"
    for rollout in solutions:
        path = rollout_path(ctx, rollout, splitter)
        first, budget_hit = await first_wrong_step(ctx, path)
        if budget_hit:
            stop = "rollout_budget"
            break
        n_annotated += 1
        if first is None:
            undecided += 1
        else:
            first.is_first_error = True

    return searched_result(
        ctx,
        mode="per_step_mc",
        step_mode=search.step_mode,
        n_searches=n_annotated,
        n_undecided_searches=undecided,
        stop_reason=stop,
        chunk_tokens=splitter.chunk_tokens if search.step_mode == "tokens" else None,
        screen_samples=screening.stats.n_rollouts,
        screen_correct=screening.stats.n_correct,
        root_n_correct=screening.stats.n_correct,
        root_n_rollouts=screening.stats.n_rollouts,
    )
