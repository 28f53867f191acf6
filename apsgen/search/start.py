"""How every search mode that samples its own solutions starts a question: screening, then (unless
screening skips it) the step splitter, the empty prefix settled correct with its MC, and the
question's own recovery probed (`apsgen.search.own_recovery`), before any label is decided."""

from __future__ import annotations

from dataclasses import dataclass

from apsgen.label.decision import by_definition, settle
from apsgen.label.evidence import MCStats
from apsgen.label.probes import OwnRecovery
from apsgen.search.context import SearchContext
from apsgen.search.labels import make_splitter, skipped_result
from apsgen.search.own_recovery import probe_own_recovery, wants_own_recovery
from apsgen.search.result import ProblemResult
from apsgen.search.screening import Screening, screen
from apsgen.search.steps import StepSplitter
from apsgen.search.tree import Rollout


@dataclass
class Started:
    screening: Screening
    splitter: StepSplitter
    root_rollouts: list[Rollout]  # the rollouts behind the root's MC
    own: OwnRecovery | None  # None: the rule takes no own-recovery probes


async def start_question(ctx: SearchContext, mode: str, root_from_screening: bool) -> Started | ProblemResult:
    """The question started, or its result when screening skips it. The root's MC is the
    screening's (`root_from_screening`) or k fresh rollouts'."""
    screening = await screen(ctx)
    if screening.skip_reason is not None:
        return skipped_result(ctx, screening, mode)
    splitter = make_splitter(ctx, screening)
    root = ctx.dag.root
    settle(root, by_definition(correct=True))  # the empty prefix cannot hold an error
    if root_from_screening:
        root.mc, root_rollouts = screening.stats, screening.rollouts
    else:
        root_rollouts = await ctx.sample(root, ctx.search.k)
        root.mc = MCStats.from_rollouts(root_rollouts, ctx.search.invalid_rollouts)
    own = await probe_own_recovery(ctx, screening.rollouts, splitter) if wants_own_recovery(ctx) else None
    return Started(screening, splitter, root_rollouts, own)
