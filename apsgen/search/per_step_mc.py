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

from apsgen.search.binary_search import first_wrong_step, rollout_path
from apsgen.search.context import SearchContext
from apsgen.search.labels import searched_result
from apsgen.search.result import ProblemResult
from apsgen.search.start import start_question

log = logging.getLogger(__name__)


async def run_per_step_mc(ctx: SearchContext) -> ProblemResult:
    search = ctx.search
    started = await start_question(ctx, "per_step_mc", root_from_screening=True)
    if isinstance(started, ProblemResult):
        return started
    screening, splitter = started.screening, started.splitter
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
        n_searches=n_annotated,
        n_undecided_searches=undecided,
        stop_reason=stop,
        chunk_tokens=splitter.chunk_tokens if ctx.settings.steps.mode in ("tokens", "sections") else None,
        screen_samples=screening.stats.n_rollouts,
        screen_correct=screening.stats.n_correct,
        root_n_correct=screening.stats.n_correct,
        root_n_rollouts=screening.stats.n_rollouts,
    )
