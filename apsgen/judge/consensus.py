"""Judging a search result's labelled paths, the same paths the exports write.

The paths are built from the result's step rows by `apsgen.paths.labelled_paths`, labelled by the
stored verdicts (a path ends at its first `-`, and before a state the rule left undecided), as the
exports build them, so the judge reads exactly the steps a PRM would train on. The judge is a stage
after the search (the worker, the bench and the eval run it on a finished result); the search
never calls it. The
located first wrong step is the path's `-` step (none on an all-`+` path). The judge's verdict and
whether it agrees are stored on the path's last state; the problem row counts them.
"""

from __future__ import annotations

import asyncio

from apsgen.judge import Judge
from apsgen.paths import labelled_paths, result_rows
from apsgen.problem import Problem
from apsgen.search.result import ProblemResult


def judged_paths(problem: Problem, result: ProblemResult) -> list[tuple[int, int, list[str]]]:
    """(end node id, located first wrong step or -1, step texts) per labelled path."""
    out: list[tuple[int, int, list[str]]] = []
    for _, segments in labelled_paths(result_rows(problem, result)):
        located = next((i for i, (_, good) in enumerate(segments) if not good), -1)
        out.append((segments[-1][0].node_id, located, [seg.text.strip() for seg, _ in segments]))
    return out


async def judge_result(judge: Judge | None, problem: Problem, result: ProblemResult) -> ProblemResult:
    """Ask the judge about every labelled path of `result` (concurrently) and record its verdicts
    (nothing without a judge, or on a result without steps)."""
    if judge is None or not result.steps:
        return result
    paths = judged_paths(problem, result)
    replies = await asyncio.gather(*(judge.first_error(problem.question, steps) for _, _, steps in paths))
    by_node = {s.node_id: s for s in result.steps}
    for (end, located, _), reply in zip(paths, replies, strict=True):
        step = by_node[end]
        step.judge_first_error = reply.first_error
        if reply.first_error is None:
            step.judge_outcome = "unparseable"
            result.n_judge_unparseable += 1
        elif reply.first_error == located:
            step.judge_outcome = "agree"
            result.n_consensus_paths += 1
        else:
            step.judge_outcome = "disagree"
        result.n_judged_paths += 1
    return result
