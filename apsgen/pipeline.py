"""Labelling one problem, defined once, and the in-process executor that runs it over many.

One problem is labelled by its search (`apsgen.search.run_search`) and then, when the job has a
judge and the settings ask for it, by the judge stage on the labelled paths
(`apsgen.judge.consensus.judge_result`). A job's problems are labelled in two stages: calibration
(the same pipeline over a seeded sample with the calibration's settings, then the fit), then every
problem against the finished calibration.

Two executors run this: Ray (`apsgen.runner`: a feeder, a pool of workers, each holding one
`Labeller`) for jobs, and `label_locally` here, in this process, for `apsgen eval`, `apsgen bench`
and tests. Neither holds label logic; the search holds no executor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from apsgen.config import Labelling
from apsgen.label.calibration import (
    Calibration,
    calibration_sample,
    calibration_search,
    fit_from_results,
    needs_calibration,
    sample_size,
    too_small,
)
from apsgen.policy.base import Policy, Sampling
from apsgen.problem import Problem
from apsgen.search import ProblemResult, Verifier, run_search


@dataclass(frozen=True)
class LabelSettings:
    """What one run of the pipeline is asked to do: the settings that shape its labels, and whether
    the judge stage runs after it (a job's problems: yes; the calibration sample, whose labels are
    not kept: no), and whether its rollouts are kept."""

    labelling: Labelling
    judged: bool = True
    keep_rollouts: bool = False  # every completion comes back in the result (`runner.keep_rollouts`)


@dataclass
class Labeller:
    """What one process holds to label problems, for its whole life: the policy, the verifier, the
    judge (None without one), the sampling and the job's seed. Many problems are labelled on it
    concurrently (each `label` call keeps its state to itself)."""

    policy: Policy
    verifier: Verifier
    sampling: Sampling
    seed: int
    judge: Any = None

    async def label(self, problem: Problem, settings: LabelSettings,
                    calibration: Calibration | None = None) -> ProblemResult:
        """Label one problem: its search against `calibration`, then the judge stage."""
        from apsgen.judge.consensus import judge_result

        result = await run_search(problem, self.policy, self.verifier, settings.labelling, self.sampling,
                                  seed=self.seed, calibration=calibration, keep_rollouts=settings.keep_rollouts)
        if settings.judged:
            result = await judge_result(self.judge, problem, result)
        return result


@dataclass(frozen=True)
class CalibrationPlan:
    """The calibration stage of a job: the sample to label with `settings`, or, when the job needs
    no calibration or its sample would say nothing, the calibration to use without one
    (`ready`)."""

    sample: list[Problem] = field(default_factory=list)
    settings: LabelSettings | None = None
    ready: Calibration | None = None
    needed: bool = True

    def fit(self, results: Sequence[ProblemResult | None], labelling: Labelling) -> Calibration:
        return fit_from_results(results, labelling.calibration)


def plan_calibration(problems: Sequence[Problem], labelling: Labelling, seed: int) -> CalibrationPlan:
    """What calibrating these problems takes (see `apsgen.label.calibration`)."""
    if not needs_calibration(labelling):
        return CalibrationPlan(needed=False)
    sample = calibration_sample(problems, sample_size(len(problems), labelling.calibration), seed)
    if (reason := too_small(len(problems), len(sample))) is not None:
        return CalibrationPlan(ready=Calibration.prior(labelling.calibration, reason))
    return CalibrationPlan(sample=sample, settings=LabelSettings(calibration_search(labelling), judged=False))


@dataclass
class LocalRun:
    """What `label_locally` returns: results in input order (None for a problem whose label failed),
    the calibration (None when the rule needs none) and the calibration sample's results."""

    results: list[ProblemResult | None]
    calibration: Calibration | None
    calibration_results: list[ProblemResult | None]


async def label_locally(
    problems: Sequence[Problem],
    labeller: Labeller,
    labelling: Labelling,
    *,
    concurrency: int | None = None,
    on_error: Callable[[Problem, Exception], None] | None = None,
    on_done: Callable[[Problem, ProblemResult | None], None] | None = None,
) -> LocalRun:
    """The in-process executor: calibrate on the job's seeded sample, then label every problem
    against that calibration, as a job does on Ray. `concurrency` bounds the labels in flight (None:
    all at once); a problem whose label raises is None in the results (`on_error` hears of it; no
    `on_error`: the error propagates). `on_done` hears of every labelled problem (not the sample's)."""
    gate = asyncio.Semaphore(concurrency) if concurrency else None

    async def one(problem: Problem, settings: LabelSettings, calibration: Calibration | None) -> ProblemResult | None:
        try:
            if gate is None:
                return await labeller.label(problem, settings, calibration)
            async with gate:
                return await labeller.label(problem, settings, calibration)
        except Exception as e:  # noqa: BLE001 - one problem's failure is reported, not the run's
            if on_error is None:
                raise
            on_error(problem, e)
            return None

    async def labelled(problem: Problem, calibration: Calibration | None) -> ProblemResult | None:
        result = await one(problem, LabelSettings(labelling), calibration)
        if on_done is not None:
            on_done(problem, result)
        return result

    plan = plan_calibration(problems, labelling, labeller.seed)
    calibration, sampled = plan.ready, []
    if plan.settings is not None:
        sampled = list(await asyncio.gather(*(one(p, plan.settings, None) for p in plan.sample)))
        calibration = plan.fit(sampled, labelling)
    results = list(await asyncio.gather(*(labelled(p, calibration) for p in problems)))
    return LocalRun(results, calibration, sampled)
