"""Binary search for the first error of one wrong rollout (OmegaPRM §3.2).

The span is the rollout's steps after its start state s (MC(s) > 0). Each probe estimates the MC
of the prefix that ends at the middle step: MC > 0 (or > mc_threshold) means the first error is to the right, MC = 0
that it is at or before the probe. The wrong solution itself counts as MC = 0 without rollouts.
Rollouts made by probes are offered to the pool.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from apsgen.search.context import SearchContext
from apsgen.search.mc_stats import MCStats
from apsgen.search.selection import Pool
from apsgen.search.steps import StepSplitter
from apsgen.search.tree import Rollout, State

log = logging.getLogger(__name__)


@dataclass
class Located:
    rollout: Rollout
    first_error: State | None  # None: stopped early (budget, or every probe rollout excluded)
    probes: int  # MC estimates paid for (cached states are free)


def rollout_path(ctx: SearchContext, rollout: Rollout, splitter: StepSplitter) -> list[State]:
    """The states after each step of the rollout, the last one being the full solution."""
    start = rollout.state
    bounds = splitter.boundaries(rollout.full_text, len(start.prefix))
    return ctx.dag.path(start, rollout.text, bounds)


async def locate_first_error(
    ctx: SearchContext, rollout: Rollout, splitter: StepSplitter, pool: Pool | None
) -> Located:
    path = rollout_path(ctx, rollout, splitter)
    # Positions: 0 is the start state (known MC > 0), i >= 1 is path[i - 1]; len(path) is the
    # wrong solution itself (known MC = 0). Invariant: first error in (lo, hi].
    lo, hi = 0, len(path)
    probes = 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        state = path[mid - 1]
        if state.mc is None:
            if not ctx.can_afford(ctx.search.k):
                log.debug("problem %s: rollout budget spent mid-search", ctx.problem.id)
                return Located(rollout, None, probes)
            await ctx.estimate(state)
            probes += 1
            if pool is not None:
                pool.offer(state.rollouts)
        assert state.mc is not None
        mc = state.mc.value
        if mc is None:
            # Every rollout was excluded (truncated/unparseable): no evidence either way.
            return Located(rollout, None, probes)
        if mc > ctx.search.mc_threshold:
            lo = mid
        else:
            hi = mid
    first = path[hi - 1]
    if first.mc is None:
        first.mc = MCStats.known(correct=False)  # the wrong solution itself
    first.is_first_error = True
    return Located(rollout, first, probes)
