"""Simulated worlds: policies with planted first errors, whose truth is known, for benchmarks,
tests and trying the pipeline without a model. Never a real backend, and nothing in the data path
imports them: a job reaches them through `policy.backend: simulated` (the policy factory) and
`dataset.path: simulated` (`problems_for`, given to the loader by the driver).

- `chain`: the world the sequential rule was first written against (one recovery rate per cell,
  every step a computation);
- `story`: built from how real policies fail (heterogeneous recovery, self-corrections, traps,
  restatements, several kinds of wrong step); `StoryWorldSpec.announce_recovery` 0 gives the
  `quiet` world, whose recoveries are never announced.
"""

from __future__ import annotations

from apsgen.config import DatasetSpec, SimulatedSpec
from apsgen.problem import Problem


def problems_for(dataset: DatasetSpec, simulated: SimulatedSpec) -> list[Problem]:
    """The questions of a `dataset.path: simulated` job: the chain world's, seeded by the dataset."""
    from apsgen.worlds.chain import simulated_problems

    return simulated_problems(n=dataset.limit or 200, spec=simulated, seed=dataset.seed)
