"""Fresh rollouts at the first errors a search located (`search.located_probes`): the
calibration's measure of recovery where a question has no prefix wrong by its text.

A located first error is a prefix that has just gone wrong, and its parent the last correct prefix
before it. Their own rollouts decided that, so they are biased (a wrong prefix was called wrong
*because* it rarely succeeded); k fresh rollouts at each are not. Only errors with room left to
recover (`CalibrationParams.min_room` steps on some path after them) are probed: a wrong last step
cannot recover, and on a question whose wrong paths recover often the errors a search locates are
exactly those (the earlier wrong prefixes looked correct).
"""

from __future__ import annotations

from apsgen.label.calibration import PARAMS
from apsgen.label.evidence import MCStats
from apsgen.label.probes import LocatedProbe, Probe
from apsgen.search.context import SearchContext
from apsgen.search.result import ProblemResult, StepLabel
from apsgen.search.tree import Rollout, State


def _graded(rollouts: list[Rollout]) -> tuple[int, int]:
    """(clean successes, graded), as the label rule counts them."""
    return MCStats.from_rollouts(rollouts, "wrong").graded


async def probe_located_errors(ctx: SearchContext, result: ProblemResult, per_question: int) -> list[LocatedProbe]:
    """Up to `per_question` located first errors and their parents, k fresh rollouts each; the
    cost is added to `result`."""
    states = ctx.dag.states()

    def room(step: StepLabel) -> int:
        full = step.prefix + step.step_text
        deepest = max((s.depth for s in states if s.prefix.startswith(full)), default=step.step_index + 1)
        return deepest - (step.step_index + 1)

    firsts = sorted((s for s in result.steps if s.is_first_error and room(s) >= PARAMS.min_room),
                    key=lambda s: s.node_id)[:per_question]
    before = (ctx.cost.n_rollouts, ctx.cost.n_policy_calls, ctx.cost.generated_tokens, ctx.cost.prompt_tokens)
    by_id = {s.node_id: s for s in result.steps}
    out = []
    for step in firsts:
        state: State | None = ctx.dag.get(step.prefix + step.step_text)
        if state is None or state.parent is None or state.parent.is_root:
            continue
        parent = by_id.get(state.parent.node_id)
        if parent is None or parent.reference_value is None:
            continue
        wrong = _graded(await ctx.sample(state, ctx.search.k))
        right = _graded(await ctx.sample(state.parent, ctx.search.k))
        ref = step.reference_value if step.reference_value is not None else parent.reference_value
        out.append(LocatedProbe(Probe(*wrong, ref, state.node_id, "located"),
                                Probe(*right, parent.reference_value, parent.node_id, "located")))
    result.n_rollouts += ctx.cost.n_rollouts - before[0]
    result.n_policy_calls += ctx.cost.n_policy_calls - before[1]
    result.generated_tokens += ctx.cost.generated_tokens - before[2]
    result.prompt_tokens += ctx.cost.prompt_tokens - before[3]
    return out
