"""The driver's calibration stage: measure the policy's recovery on a sample of the job, once.

Before any question is labelled, the job's pipeline runs over the sampled questions
(`apsgen.pipeline.plan_calibration`) on the workers, through the same feeder as the job, with the
calibration's settings (the prior; fewer searches; fresh rollouts at located first errors where a
question has no own-recovery probes); the fitted `Calibration` is written beside the manifest as
`calibration.json`. A resumed run reads it back,
so every row of an output is labelled against the same calibration; one that was made for other
settings (copied from another job's output, say) is refused, naming what differs.

Cost on a cluster: the stage runs `calibration.questions` searches (at most
`calibration.searches` searches each), spread over every worker's slots; the slots left idle
while the last of them finish are measured and stored in the artifact (`cost.idle_share`).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

from apsgen.config import JobSpec
from apsgen.io.store import OutputStore
from apsgen.label.calibration import FILE, Calibration, needs_calibration
from apsgen.pipeline import plan_calibration
from apsgen.problem import Problem
from apsgen.runner.feed import Feeder
from apsgen.runner.fingerprint import label_settings
from apsgen.search.result import ProblemResult

log = logging.getLogger(__name__)


class CalibrationMismatch(ValueError):
    """A calibration made for other settings than the job's."""


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _differences(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        return out
    return [] if a == b else [f"{path}: {b!r} in the calibration, {a!r} in the job"]


def check_matches(calibration: Calibration, spec: JobSpec) -> None:
    """Refuse a calibration made for another policy, sampling, verifier or search setting."""
    import json

    # Through JSON, as the artifact was: tuples become lists, and so on.
    settings = json.loads(json.dumps(label_settings(spec), default=str))
    diffs = _differences(settings, calibration.settings)
    if diffs:
        raise CalibrationMismatch(
            "the calibration in this output was made for other settings than the job's: "
            + "; ".join(diffs[:6]) + ("; ..." if len(diffs) > 6 else "")
            + f". Delete {FILE} to calibrate again, or use the job it was made for."
        )


def load_calibration(store: OutputStore, spec: JobSpec) -> Calibration | None:
    """The output's calibration, checked against the job; None when there is none yet (or the
    job's label rule needs none)."""
    if not needs_calibration(spec.labelling()):
        return None
    raw = store.read_bytes(FILE)
    if raw is None:
        return None
    try:
        calibration = Calibration.from_json(raw.decode())
    except (ValueError, TypeError) as e:
        raise CalibrationMismatch(f"{store.path(FILE)} is not a calibration apsgen can read ({e}); delete it "
                                  "to calibrate again") from None
    check_matches(calibration, spec)
    return calibration


class Collector:
    """The calibration stage's sink: the sample's results, kept in memory to be fitted."""

    def __init__(self) -> None:
        self.results: list[ProblemResult] = []
        self.failed = 0

    def record(self, problem: Problem, outcome: Any) -> None:
        if outcome.error is not None or outcome.result is None:
            self.failed += 1
        else:
            self.results.append(outcome.result)

    def fail(self, problem_id: str, why: str) -> None:
        log.warning("a calibration question was lost (%s); calibrating without it", why)
        self.failed += 1

    def flush_if_due(self) -> None:
        return None


def run_calibration(spec: JobSpec, pool: Any, problems: list[Problem], fingerprint: str) -> Calibration:
    """The pipeline over the calibration sample, on the pool's workers (the job's feeder, with the
    calibration's settings), then the fit (not written)."""
    import dataclasses

    plan = plan_calibration(problems, spec.labelling(), spec.seed)
    if plan.settings is None:
        assert plan.ready is not None  # needs_calibration was checked by the caller
        log.info("not calibrating: %s", plan.ready.reason)
        return dataclasses.replace(plan.ready, job_fingerprint=fingerprint, settings=label_settings_json(spec),
                                   cost={"questions": 0, "rollouts": 0})
    cap = spec.runner.max_concurrent_trees
    slots = cap * len(pool.actors)
    log.info("calibrating on %d of the job's %d questions (%d search slots)", len(plan.sample), len(problems), slots)
    t0 = time.monotonic()
    collected = Collector()
    Feeder(pool=pool, todo=deque(plan.sample), cap=cap, max_retries=spec.runner.max_retries,
           settings=plan.settings).run(collected)
    wall = time.monotonic() - t0
    results = collected.results
    calibration = plan.fit(results, spec.labelling())
    busy = sum(r.elapsed_s for r in results)
    cost = {
        "questions": len(plan.sample),
        "failed": collected.failed,
        "rollouts": sum(r.n_rollouts for r in results),
        "generated_tokens": sum(r.generated_tokens for r in results),
        "wall_s": round(wall, 2),
        "search_s": round(busy, 2),
        "slots": slots,
        # Share of the search slots idle during the stage (the tail, and slots beyond the sample).
        "idle_share": round(max(0.0, 1 - busy / (slots * wall)), 3) if wall > 0 else 0.0,
    }
    return dataclasses.replace(calibration, job_fingerprint=fingerprint, settings=label_settings_json(spec), cost=cost)


def label_settings_json(spec: JobSpec) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(label_settings(spec), default=str))


def ensure_calibration(spec: JobSpec, pool: Any, problems: list[Problem], store: OutputStore,
                       fingerprint: str) -> Calibration | None:
    """The output's calibration: read back on a resumed run, else measured now and written.
    None when the job's label rule needs none."""
    if not needs_calibration(spec.labelling()):
        return None
    existing = load_calibration(store, spec)
    if existing is not None:
        log.info("calibration from %s: %s", store.path(FILE), existing.render())
        return existing
    calibration = run_calibration(spec, pool, problems, fingerprint)
    store.write_bytes(FILE, calibration.to_json().encode())
    cost = calibration.cost
    if cost.get("questions"):  # a sample too small was not searched: run_calibration said so
        log.info("calibration: %s", calibration.render())
        log.info("calibration cost: %d rollouts, %.1f s, %.0f%% of the search slots idle meanwhile",
                 cost.get("rollouts", 0), cost.get("wall_s", 0.0), 100 * cost.get("idle_share", 0.0))
    return calibration
