"""The driver: a job's stages in order, each its own part.

1. load the problems and open the output (`data`, `io.store`): what is done already is skipped;
2. start the workers (`runner.pool`) and, unless the output holds one, calibrate
   (`runner.calibrate`);
3. feed the rest to the workers (`runner.feed.Feeder`: batches, backpressure, retries, lost
   workers) while their results are committed (`runner.commit.Committer`: shard pairs, manifest,
   progress);
4. record the run in the manifest and summarise (`runner.summary.RunSummary`).

The driver holds no GPU; each worker owns one engine for its whole life.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apsgen import __version__
from apsgen.config import JobSpec
from apsgen.data import LoadReport, load_problems
from apsgen.io.rows import Provenance, now
from apsgen.io.store import Manifest, OutputStore
from apsgen.pipeline import LabelSettings
from apsgen.problem import Problem
from apsgen.runner.commit import Committer, record_run
from apsgen.runner.feed import Feeder
from apsgen.runner.fingerprint import fingerprint
from apsgen.runner.pool import WorkerPool
from apsgen.runner.progress import Progress
from apsgen.runner.summary import RunSummary

__all__ = ["FLUSH_INTERVAL_S", "RunObserver", "RunSummary", "init_ray", "run_job"]

log = logging.getLogger(__name__)

# How often finished results are committed: the most a driver killed outright can lose.
FLUSH_INTERVAL_S = 15.0


def init_ray(verbose: bool = False) -> None:
    """Join RAY_ADDRESS when set, else start an embedded Ray on this machine.

    Without -v the workers' output (the engine's logs among it) stays in Ray's log files.
    """
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {"log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.WARNING}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(include_dashboard=False, **kwargs)


class RunObserver:
    """What a benchmark or a test watches a run through, given from outside; a run works the same
    without one. Subclass and override what you need; every method does nothing here."""

    def workers_ready(self, actors: list[Any], infos: list[Any]) -> None:
        """The workers' engines are up (benchmarks start their clocks and counters here)."""

    def result(self, problem: Problem, result: Any) -> None:
        """A problem's result was taken into the next commit."""

    def workers_done(self, actors: list[Any]) -> None:
        """The last result is in and the workers are still alive (benchmarks read their counters)."""


_NO_OBSERVER = RunObserver()


class _Stop(KeyboardInterrupt):
    """SIGTERM (`apsgen stop`, a preempted node): unwind like Ctrl-C so finished results are saved."""


@contextlib.contextmanager
def _sigterm_unwinds():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Stop(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_job(
    spec: JobSpec,
    *,
    output: str | None = None,
    verbose: bool = False,
    new_version: bool = False,
    show_progress: bool = True,
    flush_interval_s: float = FLUSH_INTERVAL_S,
    observer: RunObserver | None = None,
    policy_wrapper: Callable[[Any], Any] | None = None,
    calibrate_only: bool = False,
) -> RunSummary:
    """Run (or resume) a job to completion and return its summary.

    Finished problems are committed to the output at least every `flush_interval_s` and when the
    run ends, is interrupted (Ctrl-C, SIGTERM) or fails; a driver killed outright loses the
    problems in flight and the results of at most the last `flush_interval_s`, never writes one
    twice, and a re-run searches only what is missing. `observer` (a `RunObserver`) sees the
    workers once their engines are up, every result, and the workers before they are shut down;
    `policy_wrapper` (a picklable callable, policy -> policy) wraps each worker's policy. Both are
    for benchmarks and tests; a job never sets them.

    Before labelling, the job is calibrated (`apsgen.runner.calibrate`) unless its output holds a
    calibration already; `calibrate_only` stops there.
    """
    t0 = time.monotonic()
    job = _open(spec, output, new_version)
    report, store, manifest, todo, summary, fp, out = (
        job.report, job.store, job.manifest, job.todo, job.summary, job.fingerprint, job.output)
    from apsgen.runner.calibrate import load_calibration

    calibration = load_calibration(store, spec)  # before any worker starts: a foreign one is refused now
    if calibration is not None:
        summary.calibration = calibration.render()
    from apsgen.label.calibration import needs_calibration

    if calibrate_only and (calibration is not None or not needs_calibration(spec.labelling())):
        summary.wall_s = time.monotonic() - t0
        return summary
    if not calibrate_only and not todo:
        log.info("nothing to do: all %d problems are in %s", len(report.problems), out)
        summary.wall_s = time.monotonic() - t0
        record_run(store, manifest, summary)  # stats read the input counts from the last run
        return summary

    observer = observer or _NO_OBSERVER
    init_ray(verbose)
    with _sigterm_unwinds():
        pool = WorkerPool(spec, verbose, policy_wrapper)
        try:
            infos = pool.wait_ready()
            info = infos[0]
            observer.workers_ready(list(pool.actors), infos)
            prov = _provenance(spec, info, fp)
            from apsgen.runner.calibrate import ensure_calibration

            calibration = calibration or ensure_calibration(spec, pool, report.problems, store, fp)
            if calibration is not None:
                summary.calibration = calibration.render()
                manifest.calibration = calibration.summary()
                store.write_manifest(manifest)
            if calibrate_only:
                return summary
            try:
                _feed_and_commit(spec, pool, todo, calibration, Committer(
                    store=store, manifest=manifest, summary=summary, prov=prov, observer=observer,
                    progress=Progress(total=len(todo), enabled=show_progress), flush_interval_s=flush_interval_s,
                    shard_rows=spec.runner.shard_rows, keep_rollouts=spec.runner.keep_rollouts,
                ))
            finally:
                observer.workers_done(list(pool.actors))
        finally:
            summary.worker_restarts = pool.restarts
            summary.wall_s = time.monotonic() - t0
            record_run(store, manifest, summary)
            pool.shutdown()
    return summary


@dataclass
class _OpenJob:
    """Stage 1: the problems loaded, the output opened, what is left to search."""

    report: LoadReport
    store: OutputStore
    manifest: Manifest
    todo: deque[Problem]
    summary: RunSummary
    fingerprint: str
    output: str


def _open(spec: JobSpec, output: str | None, new_version: bool) -> _OpenJob:
    fp = fingerprint(spec)
    out = output or spec.output_dir()
    if new_version:
        out = f"{out.rstrip('/')}-{fp[:8]}"
    report = job_problems(spec)
    log.info("%s", report.summary())
    store = OutputStore(out)
    manifest = store.open_for_job(Manifest(
        job=spec.name, fingerprint=fp, spec=spec.model_dump(mode="json"), apsgen_version=__version__,
        created_at=now().isoformat(),
    ))
    done = store.done_ids()
    todo = deque(p for p in report.problems if p.id not in done)
    summary = RunSummary(
        job=spec.name, output=out, fingerprint=fp, total_problems=len(report.problems),
        already_done=len(report.problems) - len(todo), bad_rows=len(report.bad_rows),
        duplicates=report.n_duplicates, excluded=report.n_excluded,
    )
    manifest.total_problems = max(manifest.total_problems, len(report.problems))
    return _OpenJob(report, store, manifest, todo, summary, fp, out)


def job_problems(spec: JobSpec) -> LoadReport:
    """The job's problems: its dataset's, or, for `dataset.path: simulated`, a simulated world's."""
    generated = None
    if spec.dataset.path == "simulated":
        from apsgen.worlds import problems_for

        def generated() -> list[Problem]:
            return problems_for(spec.dataset, spec.policy.simulated)

    return load_problems(spec.dataset, exclude=spec.exclude, generated=generated)


def _provenance(spec: JobSpec, info: Any, fp: str) -> Provenance:
    """What every row records about how it was made (the first worker's engine stands for all)."""
    return Provenance(
        policy_model=info.policy_model,
        policy_revision=info.policy_revision,
        prompt_template_hash=info.prompt_template_hash,
        sampling=json.dumps(spec.sampling.model_dump(), sort_keys=True),
        search_params=json.dumps(spec.labelling().model_dump(), sort_keys=True),
        verifier=info.verifier,
        apsgen_version=__version__,
        job_fingerprint=fp,
    )


def _feed_and_commit(spec: JobSpec, pool: WorkerPool, todo: deque[Problem], calibration: Any,
                     commit: Committer) -> None:
    import ray

    # Put once and sent by reference with every batch: all problems are judged against the same one.
    ref = None if calibration is None else ray.put(calibration)
    settings = LabelSettings(spec.labelling(), keep_rollouts=spec.runner.keep_rollouts)
    feeder = Feeder(pool=pool, todo=todo, cap=spec.runner.max_concurrent_trees,
                    max_retries=spec.runner.max_retries, settings=settings, calibration=ref)
    try:
        feeder.run(commit)
    finally:
        commit.close()
