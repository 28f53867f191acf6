"""A question's own recovery, measured before its search (`apsgen.label.calibration.OwnRecovery`).

Screening solutions that state a false equation hold a prefix that is wrong with certainty: the
prefix through that step. Up to `label.own_recovery_probes` such prefixes (distinct, earliest in screening order,
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
from apsgen.label.text import restates_question, text_error
from apsgen.label.text.planting import misread, plant_error
from apsgen.search.binary_search import reference_for, rollout_path
from apsgen.search.context import SearchContext
from apsgen.search.steps import StepSplitter
from apsgen.search.tree import Rollout, State


def wants_own_recovery(ctx: SearchContext) -> bool:
    label = ctx.settings.label
    return label.rule == "sequential" and ctx.checks and label.own_recovery_probes > 0


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


def planting_sites(rollouts: list[Rollout], splitter: StepSplitter, limit: int, min_room: int,
                   question: str) -> list[tuple[Rollout, int, str]]:
    """Up to `limit` (rollout, step index, that step with an error planted): in distinct solutions
    that reached the right answer without a step that shows an error (their steps are right, so a
    changed one is wrong), among the steps with `min_room` steps after them, the one nearest the
    solution's middle that computes (a true equation between whole numbers, misread), else the one
    nearest the middle that states a number and does not only restate the question (miscopied): a
    step the rest of the solution builds on, with room to recover after it. Linear in the texts."""
    found: list[tuple[Rollout, int, str]] = []
    seen: set[str] = set()
    for r in rollouts:
        if len(found) >= limit:
            break
        if not (r.is_correct and r.adds_text) or r.flawed or r.full_text in seen:
            continue
        seen.add(r.full_text)
        start = len(r.state.prefix)
        ends = [*splitter.boundaries(r.full_text, start), len(r.full_text)]
        steps = [r.full_text[b:e] for b, e in zip([start, *ends[:-1]], ends)][: max(0, len(ends) - min_room)]
        if any(text_error(step) is not None for step in steps):
            continue  # a right answer through a shown error: its steps are not the policy's right ones
        sites = [(i, p) for i, step in enumerate(steps) if (p := misread(step)) is not None]
        if not sites:
            sites = [(i, p) for i, step in enumerate(steps) if not restates_question(question, step)
                     and (p := plant_error(step)) is not None]
        if sites:  # the one nearest the middle of the solution: room to recover, a value well measured
            middle = (len(ends) - 1) / 2
            found.append((r, *min(sites, key=lambda site: (abs(site[0] - middle), site[0]))))
    return found


def _site(ctx: SearchContext, rollout: Rollout, index: int, splitter: StepSplitter) -> tuple[State, float | None]:
    """The state of the rollout's path through its step `index`, and a correct prefix's expected
    value there (None: the question has no root value to scale it from)."""
    path = rollout_path(ctx, rollout, splitter)
    return path[index], reference_for(ctx, path[index], path)


async def probe_own_recovery(ctx: SearchContext, rollouts: list[Rollout], splitter: StepSplitter) -> OwnRecovery:
    """Fresh rollouts at the question's first prefixes that are wrong by a false equation (up to
    `own_recovery_probes`) and, where those are fewer, at prefixes made wrong on purpose, to
    `planted_probes` probes in all (see the module doc); the rule then judges the question against
    them (`SearchContext.know_own_recovery`)."""
    probes: list[Probe] = []
    search, label = ctx.search, ctx.settings.label
    min_room = ctx.rule.rule_params.probe_min_room  # type: ignore[attr-defined]  # the sequential rule's
    for rollout, index in slip_ends(rollouts, splitter, label.own_recovery_probes, min_room):  # type: ignore[union-attr]
        if not ctx.can_afford(search.k):
            break
        state, reference = _site(ctx, rollout, index, splitter)
        if reference is None:
            continue
        if state.mc is None:
            state.mc = MCStats.from_rollouts(await ctx.sample(state, search.k), search.invalid_rollouts)
        settle(state, by_text("arithmetic"))
        c, n = state.mc.graded
        probes.append(Probe(c, n, reference, state.node_id, "arithmetic"))
    # A question whose text shows enough wrong prefixes is measured on those; one that shows fewer is
    # topped up with planted ones to `planted_probes` in all (its measure as good as the text's would be).
    short = len(probes) < label.own_recovery_probes  # type: ignore[union-attr]
    wanted = label.planted_probes - len(probes) if short else 0  # type: ignore[union-attr]
    for rollout, index, planted in planting_sites(rollouts, splitter, wanted, min_room, ctx.problem.question):
        if not ctx.can_afford(search.k):
            break
        original, reference = _site(ctx, rollout, index, splitter)
        if reference is None:
            continue
        # Not a state of the tree: the policy never wrote it, so it is no row of the output; its
        # text is recorded with the probe.
        wrong = State(node_id=-1, prefix=original.prefix[: original.step_start] + planted,
                      parent=original.parent, step_start=original.step_start, depth=original.depth)
        c, n = MCStats.from_rollouts(await ctx.sample(wrong, search.k), search.invalid_rollouts).graded
        probes.append(Probe(c, n, reference, None, "planted", planted[:300]))
    own = OwnRecovery(tuple(probes))
    ctx.know_own_recovery(own)
    return own
