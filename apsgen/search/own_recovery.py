"""A question's own recovery, measured before its search (`apsgen.label.calibration.OwnRecovery`).

Screening solutions that state a false equation hold a prefix that is wrong with certainty: the
prefix through that step. Up to `search.own_recovery_probes` such prefixes (distinct, earliest in screening order,
with at least `RuleParams.probe_min_room` steps after them on their solution: room to recover) get k fresh rollouts
each; how many still end right, cleanly, is what this question's wrong prefixes keep. The probes
are chosen before any label is decided, so the question's evidence is fixed before its search and
every verdict is a function of it, whatever order the search then runs in. The probed states are
stored like any other: wrong by their text, with their rollouts.
"""

from __future__ import annotations

from apsgen.label.decision import by_text, settle
from apsgen.label.evidence import MCStats
from apsgen.label.probes import OwnRecovery, Probe
from apsgen.label.text import text_error
from apsgen.search.binary_search import reference_for, rollout_path
from apsgen.search.context import SearchContext
from apsgen.search.steps import StepSplitter
from apsgen.search.tree import Rollout


def wants_own_recovery(ctx: SearchContext) -> bool:
    s = ctx.search
    return s.label_rule == "sequential" and s.step_checks and s.own_recovery_probes > 0


def slip_ends(rollouts: list[Rollout], splitter: StepSplitter, limit: int, min_room: int) -> list[tuple[Rollout, int]]:
    """Up to `limit` (rollout, end offset of its first step) where that step is the rollout's first
    to show an error by its text, the error is a false equation (a retraction comes *after* a
    recovery, so it would choose the prefixes that recovered), and `min_room` steps follow it.
    Distinct prefixes only; the text is split, no state is made. Linear in the texts."""
    found: list[tuple[Rollout, int]] = []
    seen: set[str] = set()
    for r in rollouts:
        if len(found) >= limit:
            break
        if not r.adds_text:
            continue
        start = len(r.state.prefix)
        bounds = splitter.boundaries(r.full_text, start)
        ends = [*bounds, len(r.full_text)]
        begin = start
        for i, end in enumerate(ends):
            error = text_error(r.full_text[begin:end])
            if error is not None:
                key = r.full_text[:end]
                if error == "arithmetic" and len(ends) - (i + 1) >= min_room and key not in seen:
                    seen.add(key)
                    found.append((r, i))
                break
            begin = end
    return found


async def probe_own_recovery(ctx: SearchContext, rollouts: list[Rollout], splitter: StepSplitter) -> OwnRecovery:
    """Fresh rollouts at the question's first prefixes that are wrong by a false equation (see the
    module doc); the rule then judges the question against them (`SearchContext.know_own_recovery`)."""
    probes: list[Probe] = []
    min_room = ctx.rule.rule_params.probe_min_room  # type: ignore[attr-defined]  # the sequential rule's
    for rollout, index in slip_ends(rollouts, splitter, ctx.search.own_recovery_probes, min_room):
        if not ctx.can_afford(ctx.search.k):
            break
        path = rollout_path(ctx, rollout, splitter)
        state = path[index]
        reference = reference_for(ctx, state, path)
        if reference is None:
            continue
        if state.mc is None:
            state.mc = MCStats.from_rollouts(await ctx.sample(state, ctx.search.k), ctx.search.invalid_rollouts)
        settle(state, by_text("arithmetic"))
        c, n = state.mc.graded
        probes.append(Probe(c, n, reference, state.node_id, "arithmetic"))
    own = OwnRecovery(tuple(probes))
    ctx.know_own_recovery(own)
    return own
