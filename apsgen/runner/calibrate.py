"""The driver's calibration stage: measure the policy's recovery on a sample of the job, once.

Before any question is labelled, the sampled questions (`apsgen.search.calibration`) are searched
on the workers with the prior and probed at the first errors they locate; the fitted
`Calibration` is written beside the manifest as `calibration.json`. A resumed run reads it back,
so every row of an output is labelled against the same calibration; one that was made for other
settings (copied from another job's output, say) is refused, naming what differs.

Cost on a cluster: the stage runs `calibration_questions` searches (at most
`calibration_searches` searches each), spread over every worker's slots; the slots left idle
while the last of them finish are measured and stored in the artifact (`cost.idle_share`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from apsgen.config import JobSpec
from apsgen.io.store import OutputStore
from apsgen.problem import Problem
from apsgen.runner.fingerprint import label_settings
from apsgen.search.calibration import (
    FILE,
    Calibration,
    calibration_sample,
    calibration_search,
    fit_from_results,
    needs_calibration,
    sample_size,
    too_small,
)

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
    if not needs_calibration(spec.search):
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


def sample_for(spec: JobSpec, problems: list[Problem]) -> list[Problem]:
    return calibration_sample(problems, sample_size(len(problems), spec.search), spec.seed)


def run_calibration(spec: JobSpec, pool: Any, problems: list[Problem], fingerprint: str,
                    collect_s: float = 0.1) -> Calibration:
    """Search the calibration sample on the pool's workers and fit the calibration (not written)."""
    import ray

    sample = sample_for(spec, problems)
    if (reason := too_small(len(problems), len(sample))) is not None:
        log.info("not calibrating: %s", reason)
        import dataclasses

        return dataclasses.replace(Calibration.prior(spec.search, reason), job_fingerprint=fingerprint,
                                   settings=label_settings_json(spec), cost={"questions": 0, "rollouts": 0})
    settings = calibration_search(spec.search)
    cap = spec.runner.max_concurrent_trees
    slots = cap * len(pool.actors)
    log.info("calibrating on %d of the job's %d questions (%d search slots)", len(sample), len(problems), slots)
    t0 = time.monotonic()
    todo = list(sample)
    attempts: dict[str, int] = {}
    in_flight: dict[Any, tuple[Problem, int]] = {}
    load = [0] * len(pool.actors)
    results, failed = [], 0
    while todo or in_flight:
        while todo:
            idx = min(range(len(load)), key=load.__getitem__)
            if load[idx] >= cap:
                break
            problem = todo.pop(0)
            in_flight[pool.actors[idx].search.remote(problem, settings, None, True)] = (problem, idx)
            load[idx] += 1
        ready, _ = ray.wait(list(in_flight), num_returns=len(in_flight), timeout=collect_s)
        for ref in ready:
            if ref not in in_flight:  # a lost worker's other refs were already requeued
                continue
            problem, idx = in_flight.pop(ref)
            load[idx] -= 1
            try:
                outcome = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as e:
                # A dead worker: replace it and send its questions again (bounded, as the feed does).
                lost = [problem] + [p for p, i in in_flight.values() if i == idx]
                for r in [r for r, (_, i) in in_flight.items() if i == idx]:
                    in_flight.pop(r)
                load[idx] = 0
                log.warning("worker %d died during calibration (%s); replacing it", idx, type(e).__name__)
                pool.replace(idx)
                for p in lost:
                    attempts[p.id] = attempts.get(p.id, 0) + 1
                    if attempts[p.id] > spec.runner.max_retries:
                        failed += 1
                    else:
                        todo.append(p)
                continue
            except ray.exceptions.RayError as e:  # a lost object: this sample loses one question
                log.warning("a calibration question was lost (%s); calibrating without it", type(e).__name__)
                failed += 1
                continue
            if outcome.error is not None or outcome.result is None:
                failed += 1
            else:
                results.append(outcome.result)
    wall = time.monotonic() - t0
    calibration = fit_from_results(results, spec.search)
    busy = sum(r.elapsed_s for r in results)
    cost = {
        "questions": len(sample),
        "failed": failed,
        "rollouts": sum(r.n_rollouts for r in results),
        "generated_tokens": sum(r.generated_tokens for r in results),
        "wall_s": round(wall, 2),
        "search_s": round(busy, 2),
        "slots": slots,
        # Share of the search slots idle during the stage (the tail, and slots beyond the sample).
        "idle_share": round(max(0.0, 1 - busy / (slots * wall)), 3) if wall > 0 else 0.0,
    }
    import dataclasses

    return dataclasses.replace(calibration, job_fingerprint=fingerprint, settings=label_settings_json(spec), cost=cost)


def label_settings_json(spec: JobSpec) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(label_settings(spec), default=str))


def ensure_calibration(spec: JobSpec, pool: Any, problems: list[Problem], store: OutputStore,
                       fingerprint: str) -> Calibration | None:
    """The output's calibration: read back on a resumed run, else measured now and written.
    None when the job's label rule needs none."""
    if not needs_calibration(spec.search):
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
