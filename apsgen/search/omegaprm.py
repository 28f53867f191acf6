"""OmegaPRM (Luo et al. 2024, §3): screen, estimate the root, then repeatedly select a
(state, wrong rollout) pair by Q + U and binary-search that rollout for its first error. Screening
samples that reach the right answer through a false equation (`steps.checks`) are searched
first: their error is certain, MC alone can never see it.

Stops at `max_searches` selections, when the per-question rollout budget cannot pay for another
estimate, or when the pool is empty. A dry pool is refilled first (`search.refill_pool`): k fresh
solutions of the question, as screening drew them, their wrong ones joining the pool; the question
stops at a dry pool when the searches since the last refill located no new first error (they
repeated one, or ended undecided: another draw would do the same). A selected rollout whose path runs through a first
error already located is not searched (`search.skip_located`): its search could only find that
error again, so it does not use up a selection. A search the label rule left undecided is counted,
not retried: the rule is a function of its evidence and would decide the same way again.

The paper's search has neither: its pool runs dry on questions whose searches end early (as they do
where step checks settle a false equation without probes, so fewer probe rollouts feed the pool),
and duplicate searches count against `max_searches`.
"""

from __future__ import annotations

import logging

from apsgen.label.evidence import MCStats
from apsgen.search.binary_search import Located, has_text_error, locate_first_error, rollout_path, verify_right_answer
from apsgen.search.context import SearchContext
from apsgen.search.labels import allgood_candidates, searched_result, store_allgood
from apsgen.search.reflections import judge_reflection
from apsgen.search.result import ProblemResult
from apsgen.search.selection import Pool
from apsgen.search.start import start_question
from apsgen.search.tree import Rollout

log = logging.getLogger(__name__)


async def run_omegaprm(ctx: SearchContext) -> ProblemResult:
    search = ctx.search
    started = await start_question(ctx, "omegaprm", search.root_from_screening)
    if isinstance(started, ProblemResult):
        return started
    screening, splitter, root, root_rollouts = started.screening, started.splitter, ctx.dag.root, started.root_rollouts
    stop: str | None = None
    if started.own is not None:  # measured before any label: a rule input
        if search.located_probes and started.own.graded():
            stop = "probed"  # a calibration search (`located_probes`) is for the question's recovery: it has it
        elif ctx.rule.undecidable(root.mc.clean_value, started.own):
            stop = "undecidable"  # its wrong prefixes end right about as often as its correct ones: no label
    pool = Pool(search, ctx.rule, ctx.admits)
    pool.offer(root_rollouts)

    # A reasoning trace goes on after its first error: the step that retracts it is judged too.
    reflecting = ctx.settings.reasoning.enabled and ctx.settings.reasoning.reflections and ctx.checks
    n_searches = 0
    parked: list[Rollout] = []  # searches left undecided
    searches_from_root = 0
    origin: dict[int, str] = {}

    def record(located: Located, rollout: Rollout) -> None:
        if located.first_error is not None:
            origin.setdefault(located.first_error.node_id, "root" if rollout.state.is_root else "pool")

    # Right answers reached through a false equation or a retraction hold a certain error: searched first.
    certain: dict[str, Rollout] = {}

    def certain_errors(rollouts: list[Rollout]) -> list[Rollout]:
        found = []
        for r in rollouts:
            if r.is_correct and r.full_text not in certain and has_text_error(ctx, r, splitter):
                certain[r.full_text] = r
                found.append(r)
        return found

    first_searches = certain_errors(screening.rollouts)

    refills = 0
    located_at_refill = -1  # a refill must lead to a new first error before the next one
    while stop is None:
        if n_searches >= search.max_searches:
            stop = "max_searches"
            break
        if not ctx.can_afford(search.k):
            stop = "rollout_budget"
            break
        rollout = first_searches.pop(0) if first_searches else pool.select()
        if rollout is None and search.refill_pool and ctx.can_afford(search.k) and len(origin) > located_at_refill:
            # The pool ran dry with searches left: k fresh solutions of the question, as screening drew.
            fresh = await ctx.sample(root, search.k)
            root.mc = root.mc.merged(MCStats.from_rollouts(fresh, search.invalid_rollouts))
            refills += 1
            located_at_refill = len(origin)
            first_searches = certain_errors(fresh)
            if pool.offer(fresh) or first_searches:
                continue
        if rollout is None:
            stop = "empty_pool"
            break
        path = rollout_path(ctx, rollout, splitter)
        if search.skip_located and any(s.is_first_error for s in path):
            continue  # its search could only find a first error already located
        n_searches += 1
        searches_from_root += rollout.state.is_root
        located = await locate_first_error(ctx, rollout, splitter, pool, path)
        record(located, rollout)
        if located.first_error is not None and reflecting:
            await judge_reflection(ctx, path, located.first_error)
        if located.stop == "undecided":
            parked.append(rollout)
        if located.stop == "budget":
            stop = "rollout_budget"
            break

    # The rule is a function of the evidence, so a search left undecided would end the same way
    # again: it is counted, not retried.
    undecided = len(parked)

    # Right answers: stored as all-good paths where one is unlikely to hold a wrong step; elsewhere
    # (the sequential rule, a question still being labelled) each is verified prefix by prefix, and
    # the first prefix decided wrong is a hidden first error.
    allowed, candidates = allgood_candidates(ctx, screening.rollouts, splitter)
    verify = (not allowed and ctx.settings.sequential and ctx.settings.label.verify_right_answers  # type: ignore[union-attr]
              and stop not in ("undecidable", "probed", "rollout_budget"))
    for path in candidates if allowed or verify else []:
        if allowed:
            store_allgood(path)
            continue
        how, located = await verify_right_answer(ctx, path)
        if how == "budget":
            stop = "rollout_budget"
            break
        if how == "no_error":
            store_allgood(path)
            ctx.allgood_verified += 1
        elif located is not None and located.first_error is not None:  # a hidden error, found from the root's solutions
            origin.setdefault(located.first_error.node_id, "root")
            ctx.allgood_hidden += 1
            if reflecting:
                await judge_reflection(ctx, path, located.first_error)
    result = searched_result(
        ctx,
        mode="omegaprm",
        n_searches=n_searches,
        n_undecided_searches=undecided,
        searches_from_root=searches_from_root,
        first_error_origin=origin,
        stop_reason=stop or "empty_pool",
        chunk_tokens=splitter.chunk_tokens if ctx.settings.steps.mode in ("tokens", "sections") else None,
        screen_samples=screening.stats.n_rollouts,
        screen_correct=screening.stats.n_correct,
        root_n_correct=root.mc.n_correct,
        root_n_rollouts=root.mc.n_rollouts,
    )
    log.debug("problem %s: %d searches, %d labels, %d refills, stop=%s", ctx.problem.id, n_searches,
              len(result.steps), refills, stop)
    return result
