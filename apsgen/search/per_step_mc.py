"""The per-step Monte Carlo baseline (Math-Shepherd style), the yardstick for OmegaPRM's efficiency.

After the same screening, every wrong screening solution is split into steps and the MC of every
step prefix is estimated with k completions (the last step's is the solution's own verdict). The
first step with MC = 0 (or <= mc_threshold) is its located first error. Correct solutions are not annotated: they have
no first error to locate, and annotating them would only make the baseline look costlier.
Identical prefixes are one state here too, so neither mode pays twice for the same estimate.
"""

from __future__ import annotations

import logging

from apsgen.search.binary_search import rollout_path
from apsgen.search.context import SearchContext
from apsgen.search.labels import searched_result
from apsgen.search.mc_stats import MCStats
from apsgen.search.omegaprm import make_splitter, skipped_result
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
    solutions = [r for r in screening.rollouts if r.is_wrong][: search.max_searches]
    n_annotated = 0
    stop = "done"
    for rollout in solutions:
        path = rollout_path(ctx, rollout, splitter)
        if path[-1].mc is None:
            path[-1].mc = MCStats.known(correct=False)
        budget_hit = False
        for state in path[:-1]:
            if state.mc is None:
                if not ctx.can_afford(search.k):
                    budget_hit = True
                    break
                await ctx.estimate(state)
        if budget_hit:
            stop = "rollout_budget"
            break
        n_annotated += 1
        for state in path:
            assert state.mc is not None
            if state.mc.value is not None and state.mc.value <= search.mc_threshold:
                state.is_first_error = True
                break

    result = searched_result(
        ctx,
        mode="per_step_mc",
        step_mode=search.step_mode,
        n_searches=n_annotated,
        stop_reason=stop,
        chunk_tokens=splitter.chunk_tokens if search.step_mode == "tokens" else None,
        screen_samples=screening.stats.n_rollouts,
        screen_correct=screening.stats.n_correct,
        root_n_correct=screening.stats.n_correct,
        root_n_rollouts=screening.stats.n_rollouts,
    )
    return result
