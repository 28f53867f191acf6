"""Reflections in a reasoning trace: the later step that retracts a located first error.

A reasoning policy's trace goes on after its first error, and often says so: "Wait, that's not
right. 23 + 14 is 37, not 35." Such a step (one whose own text retracts something before it:
`apsgen.label.text.retraction`) may put the trace back on track, or not (DeltaBench, arXiv
2502.19361, finds two thirds of reflections ineffective). After the binary search locates a path's
first error, the first later step of the same path that retracts is recorded as the reflection on
it, and whether it put the trace back on track is judged as every label is: the label rule on k
rollouts from the reflection's prefix (more where the rule asks), the text before it set aside.
Correct: the reflection corrected the span between the first error and itself; wrong: it did not.

Reflections are read only with `steps.checks` (reading a step's text). The state's own verdict is
wrong (its prefix holds the first error): "every step after the first error is wrong" is still what
the default export trains on. `apsgen export --convention corrected` keeps the corrected span with
its own labels (`apsgen.paths`).
"""

from __future__ import annotations

import logging

from apsgen.label.decision import by_text, settle
from apsgen.label.text.retraction import retraction
from apsgen.search.binary_search import reference_for
from apsgen.search.context import SearchContext
from apsgen.search.tree import State

log = logging.getLogger(__name__)


def reflection_after(path: list[State], first: State) -> State | None:
    """The first step after `first` on `path` whose own text retracts something before it."""
    if first not in path:
        return None
    for state in path[path.index(first) + 1:]:
        if retraction(state.step_text) is not None:
            return state
    return None


async def judge_reflection(ctx: SearchContext, path: list[State], first: State) -> State | None:
    """Record the reflection on `first` along `path` and judge it (see the module doc); the
    reflection's state, or None when the path has none or the budget cannot pay for its rollouts.
    A reflection already judged (a prefix shared by two paths) is not judged again."""
    reflection = reflection_after(path, first)
    if reflection is None:
        return None
    if reflection.reflection is not None:
        return reflection
    if reflection.mc is None and not ctx.can_afford(ctx.search.k):
        return None
    anchor = first.parent if first.parent is not None and not first.parent.is_root else None
    reflection.reflects_on = first
    if reflection.decision is None:  # its prefix holds the first error: wrong, as its text says
        settle(reflection, by_text(ctx.wrong_by_text(reflection) or "retraction"))
    reflection.reflection = await ctx.judge_rollouts(reflection, reference_for(ctx, reflection, path, anchor))
    log.debug("problem %s: reflection %d on first error %d: %s", ctx.problem.id, reflection.node_id,
              first.node_id, reflection.reflection.verdict)
    return reflection
