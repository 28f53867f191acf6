"""OmegaPRM search, the per-step Monte Carlo baseline and annotate mode: pure (no Ray, no engine,
no judge, no io imports).

`run_search` is the one entry point; it dispatches on `search.mode`. An LLM judge, when a job has
one, reads the finished result afterwards (`apsgen.judge.consensus.judge_result`).
"""

from __future__ import annotations

import logging
import time
import traceback

from apsgen.config import Labelling
from apsgen.policy.base import Policy, Sampling
from apsgen.problem import Problem
from apsgen.search.context import SearchContext, Verifier
from apsgen.search.labels import searched_result
from apsgen.search.result import KeptRollout, ProblemResult, StepLabel

log = logging.getLogger(__name__)

__all__ = ["KeptRollout", "ProblemResult", "StepLabel", "Verifier", "run_search"]


async def run_search(
    problem: Problem,
    policy: Policy,
    verifier: Verifier,
    settings: Labelling,
    sampling: Sampling,
    *,
    seed: int,
    calibration: object | None = None,
    keep_rollouts: bool = False,
) -> ProblemResult:
    """Search one question with `settings` (the job's `Labelling`: search, steps, label rule,
    calibration). `verifier` is anything with `async acheck_batch(solutions, gold, truncated)` (the
    `Verifier` protocol); `calibration` (an `apsgen.label.calibration.Calibration`) is what the
    sequential rule judges against (None: the prior). `keep_rollouts`: every completion drawn comes
    back in `result.rollouts`. With `search.located_probes`
    (the calibration stage's settings) a question without own-recovery probes also gets fresh
    rollouts at the first errors its search located (`result.located_probes`).

    All state is local to this call, so many calls can run concurrently on one policy/verifier;
    request seeds derive from (seed, problem.id, prefix, call number), so a seed fixes the labels.
    """
    from apsgen.search.annotate import run_annotate
    from apsgen.search.omegaprm import run_omegaprm
    from apsgen.search.per_step_mc import run_per_step_mc

    search = settings.search
    ctx = SearchContext(problem, policy, verifier, settings, sampling, seed, calibration, keep_rollouts)
    t0 = time.perf_counter()
    if search.mode == "omegaprm":
        runner = run_omegaprm
    elif search.mode == "per_step_mc":
        runner = run_per_step_mc
    elif search.mode == "annotate":
        runner = run_annotate
    else:  # the spec validates mode; this guards hand-built specs
        raise ValueError(f"search.mode {search.mode!r}: expected 'omegaprm', 'per_step_mc' or 'annotate'")
    try:
        result = await runner(ctx)
    except Exception as e:  # noqa: BLE001 - an application error ends this question, not the run
        if ctx.cost.n_rollouts == 0:
            raise  # nothing paid for: the caller records the error and a re-run tries again
        # Keep what was paid for: every state estimated so far is a label, and the problem row
        # says why the search stopped.
        log.warning("problem %s: search failed after %d rollouts: %s", problem.id, ctx.cost.n_rollouts, e)
        result = searched_result(ctx, mode=search.mode, stop_reason="error")
        result.status = "failed"
        result.error = "".join(traceback.format_exception_only(type(e), e)).strip()[:2000]
    own = ctx.own_recovery.graded() if ctx.own_recovery is not None else ()
    if search.located_probes and result.status == "searched" and not own:
        from apsgen.search.located_probes import probe_located_errors

        result.located_probes = await probe_located_errors(ctx, result, search.located_probes)
    result.elapsed_s = time.perf_counter() - t0
    result.rollouts = ctx.kept
    return result
