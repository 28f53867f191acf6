"""Screening: sample full solutions and keep a question only if some are right and some wrong."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from apsgen.label.evidence import MCStats
from apsgen.search.context import SearchContext
from apsgen.search.result import SkipReason
from apsgen.search.tree import Rollout

log = logging.getLogger(__name__)


@dataclass
class Screening:
    rollouts: list[Rollout]
    stats: MCStats  # over all screening samples: the root's MC when root_from_screening
    skip_reason: SkipReason | None
    mean_tokens: float  # mean sample length, for the paper's token-based steps


def skip_reason_for(stats: MCStats) -> SkipReason | None:
    """Why a question cannot be searched, or None when it has both right and wrong answers."""
    if stats.n_correct == 0 and stats.n_wrong == 0:
        return "no_answers"
    if stats.n_correct == 0:
        return "all_wrong"
    if stats.n_wrong == 0:
        # Failures, if any, were truncated or unparseable: no wrong answer to search for its first error.
        return "only_invalid_failures" if stats.n_invalid else "all_correct"
    return None


async def screen(ctx: SearchContext) -> Screening:
    """One request for `screen_samples` full solutions from the empty prefix."""
    rollouts = await ctx.sample(ctx.dag.root, ctx.search.screen_samples)
    stats = MCStats.from_rollouts(rollouts, ctx.search.invalid_rollouts, "screening")
    reason = skip_reason_for(stats)
    if reason is not None:
        log.debug("problem %s skipped: %s (%d correct of %d)", ctx.problem.id, reason, stats.n_correct, stats.n_rollouts)
    mean_tokens = sum(r.n_tokens for r in rollouts) / max(1, len(rollouts))
    return Screening(rollouts, stats, reason, mean_tokens)
