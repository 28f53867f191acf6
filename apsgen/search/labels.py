"""Label extraction: every state of the tree becomes a StepLabel (the whole tree is stored, states
without an estimate included, so readers follow parent ids); the cost becomes the result."""

from __future__ import annotations

from apsgen.label.decision import Decision
from apsgen.label.evidence import MCStats
from apsgen.reasoning import part_of
from apsgen.search.context import SearchContext
from apsgen.search.result import ProblemResult, StepLabel
from apsgen.search.screening import Screening
from apsgen.search.steps import StepSplitter, chunk_tokens_for
from apsgen.search.tree import Rollout, State


def step_label(state: State, ctx: SearchContext) -> StepLabel:
    mc = state.mc or MCStats(n_rollouts=0, n_correct=0, n_wrong=0, source="unestimated")
    parent = state.parent
    if state.decision is not None:
        decision = state.decision
    elif state.mc is None:
        decision = Decision("undecided")  # nobody estimated it: no evidence, no reference
    else:
        decision = ctx.rule_decision(mc, None)  # estimated, never probed by a search
    return StepLabel(
        node_id=state.node_id,
        parent_id=None if parent is None or parent.is_root else parent.node_id,
        prefix=state.prefix[: state.step_start],
        step_text=state.prefix[state.step_start :],
        step_index=state.depth - 1,
        char_start=state.step_start,
        char_end=len(state.prefix),
        mc_value=mc.value,
        n_correct=mc.n_correct,
        n_rollouts=mc.n_rollouts,
        n_truncated=mc.n_truncated,
        n_unparseable=mc.n_unparseable,
        n_timeouts=mc.n_timeouts,
        n_correct_flawed=mc.n_correct_flawed,
        is_first_error=state.is_first_error,
        label_source=mc.source,
        verdict=decision.verdict,
        verdict_basis=decision.basis,
        # A reflection's text verdict has no reference: the row keeps the one its reflection was judged against.
        reference_value=(state.reflection.reference if state.reflection is not None and decision.reference is None
                         else decision.reference),
        label_score=decision.score,
        parent_mc=parent.mc.value if parent is not None and parent.mc is not None else None,
        section=part_of(state.prefix, state.step_start, ctx.settings.thinking_end),
        reflects_on=state.reflects_on.node_id if state.reflects_on is not None else None,
        reflection_verdict=state.reflection.verdict if state.reflection is not None else None,
    )


def stored_states(ctx: SearchContext) -> list[State]:
    """The states that become rows: all but the root, estimated or not."""
    return [s for s in ctx.dag.states() if not s.is_root]


def allgood_candidates(ctx: SearchContext, rollouts: list[Rollout], splitter: StepSplitter) -> tuple[bool, list[list[State]]]:
    """(may they be stored as they are, the paths of up to `search.correct_paths` distinct right-answer
    solutions). Stored as they are only where the rule says a right answer is unlikely to have come
    through a wrong step (`LabelRule.stores_allgood`); elsewhere each is verified first
    (`apsgen.search.binary_search.verify_right_answer`). A right answer reached through a step that
    shows an error by its text is no candidate (the search looks at it instead). Costs no rollout."""
    root = ctx.dag.root.mc
    ctx.allgood_root = root.clean_value if root is not None else None
    allowed, ctx.allgood_risk = ctx.rule.stores_allgood(ctx.allgood_root, ctx.own_recovery)
    seen: set[str] = set()
    paths: list[list[State]] = []
    for rollout in rollouts:
        if len(paths) == ctx.search.correct_paths:
            break
        if not rollout.is_correct or rollout.full_text in seen or not rollout.adds_text:
            continue
        bounds = splitter.boundaries(rollout.full_text, len(rollout.state.prefix))
        path = ctx.dag.path(rollout.state, rollout.text, bounds)
        if any(ctx.step_error(state) is not None for state in path):
            continue
        seen.add(rollout.full_text)
        paths.append(path)
    return allowed, paths


def store_allgood(path: list[State]) -> None:
    """A right-answer solution stored as an all-good path: its last state carries its verdict (MC 1)."""
    last = path[-1]
    if last.mc is None:
        last.mc = MCStats.known(correct=True)


def fill_cost(result: ProblemResult, ctx: SearchContext) -> ProblemResult:
    c = ctx.cost
    result.n_policy_calls = c.n_policy_calls
    result.n_rollouts = c.n_rollouts
    result.prompt_tokens = c.prompt_tokens
    result.generated_tokens = c.generated_tokens
    result.outcomes = dict(sorted(c.outcomes.items()))
    result.label_rule = ctx.describe_rule()
    result.own_recovery = ctx.own_recovery
    if ctx.allgood_risk is not None:
        result.allgood = {"root_value": ctx.allgood_root, "risk": ctx.allgood_risk}
        if ctx.allgood_verified or ctx.allgood_hidden:
            result.allgood.update(verified=ctx.allgood_verified, hidden_errors=ctx.allgood_hidden)
    return result


def searched_result(ctx: SearchContext, *, mode: str, **extra: object) -> ProblemResult:
    """The result of a searched question: labels in node order, root MC, cost."""
    root = ctx.dag.root
    result = ProblemResult(
        problem_id=ctx.problem.id,
        status="searched",
        mode=mode,
        step_mode=ctx.settings.steps.mode,
        root_mc=root.mc.value if root.mc is not None else None,
        root_mc_source="screening" if root.mc is not None and root.mc.source == "screening" else "fresh",
        steps=[step_label(s, ctx) for s in stored_states(ctx)],
        **extra,  # type: ignore[arg-type]
    )
    result.n_first_errors = sum(1 for s in result.steps if s.is_first_error)
    return fill_cost(result, ctx)


def make_splitter(ctx: SearchContext, screening: Screening) -> StepSplitter:
    return splitter_for(ctx, screening.mean_tokens)


def splitter_for(ctx: SearchContext, mean_tokens: float) -> StepSplitter:
    """The job's step rule (`steps`), token chunks sized from `mean_tokens`."""
    steps = ctx.settings.steps
    chunk = chunk_tokens_for(mean_tokens, steps.per_solution)
    return StepSplitter(steps.mode, steps.delimiter, chunk, ctx.policy.count_tokens, ctx.settings.thinking_end)


def skipped_result(ctx: SearchContext, screening: Screening, mode: str) -> ProblemResult:
    result = ProblemResult(
        problem_id=ctx.problem.id,
        status="skipped",
        skip_reason=screening.skip_reason,
        mode=mode,
        step_mode=ctx.settings.steps.mode,
        root_mc=screening.stats.value,
        root_mc_source="screening",
        screen_samples=screening.stats.n_rollouts,
        screen_correct=screening.stats.n_correct,
    )
    return fill_cost(result, ctx)
