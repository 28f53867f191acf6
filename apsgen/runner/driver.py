"""The driver: loads problems, places SearchWorker actors, feeds them with backpressure, replaces
dead workers, writes shards as problems finish, shows one progress bar, and summarises.

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
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from apsgen import __version__
from apsgen.config import JobSpec
from apsgen.data import LoadReport, load_problems
from apsgen.io.rows import Provenance, now, problem_row, step_rows
from apsgen.io.store import Manifest, OutputStore
from apsgen.problem import Problem
from apsgen.runner.fingerprint import fingerprint
from apsgen.runner.pool import WorkerPool
from apsgen.runner.progress import Progress

log = logging.getLogger(__name__)

# How often finished results are committed: the most a driver killed outright can lose.
FLUSH_INTERVAL_S = 15.0


@dataclass
class RunSummary:
    job: str
    output: str
    fingerprint: str
    total_problems: int = 0
    already_done: int = 0
    searched: int = 0
    skipped: Counter = field(default_factory=Counter)
    failed: dict[str, str] = field(default_factory=dict)
    bad_rows: int = 0
    duplicates: int = 0
    excluded: int = 0
    rollouts: int = 0
    policy_calls: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    steps: int = 0
    positive: int = 0  # verdict correct
    negative: int = 0  # verdict wrong
    undecided: int = 0
    first_errors: int = 0
    worker_restarts: int = 0
    calibration: str | None = None  # the recovery distribution the labels were judged against (sequential rule)
    wall_s: float = 0.0
    problems_by_node: Counter = field(default_factory=Counter)  # Ray node id -> problems it finished

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["skipped"] = dict(self.skipped)
        d["problems_by_node"] = dict(self.problems_by_node)
        return d

    def render(self) -> str:
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        rate = self.generated_tokens / self.wall_s if self.wall_s else 0.0
        lines = [
            f"job {self.job}: {self.output}  (fingerprint {self.fingerprint})",
            f"  problems      {self.total_problems} loaded, {self.already_done} already done, "
            f"{self.searched} searched, {skipped} skipped ({reasons}), {len(self.failed)} failed",
            f"  input         {self.bad_rows} bad rows, {self.duplicates} duplicates, {self.excluded} excluded",
            f"  rollouts      {self.rollouts} in {self.policy_calls} policy calls",
            f"  tokens        {self.generated_tokens} generated ({rate:.0f}/s), {self.prompt_tokens} prompt",
            f"  labels        {self.steps} steps: {self.positive} correct, {self.negative} wrong, "
            f"{self.undecided} undecided; {self.first_errors} first errors located",
            *([f"  calibration   {self.calibration}"] if self.calibration is not None else []),
            f"  wall time     {self.wall_s:.1f}s" + (f", {self.worker_restarts} worker restarts" if self.worker_restarts else ""),
        ]
        if len(self.problems_by_node) > 1:
            lines.append("  nodes         " + ", ".join(
                f"{node[:8]} {n}" for node, n in sorted(self.problems_by_node.items())) + " problems")
        for pid, err in list(self.failed.items())[:5]:
            lines.append(f"  failed {pid}: {err.splitlines()[-1][:160]}")
        return "\n".join(lines)


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


class RunObserver(Protocol):
    """Hooks for benchmarks and tests; a run works the same without one."""

    def workers_ready(self, actors: list[Any], infos: list[Any]) -> None: ...

    def workers_done(self, actors: list[Any]) -> None: ...


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
    on_result: Callable[[Problem, Any], None] | None = None,
    flush_interval_s: float = FLUSH_INTERVAL_S,
    worker_kwargs: dict[str, Any] | None = None,
    observer: RunObserver | None = None,
    calibrate_only: bool = False,
) -> RunSummary:
    """Run (or resume) a job to completion and return its summary.

    Finished problems are committed to the output at least every `flush_interval_s` and when the
    run ends, is interrupted (Ctrl-C, SIGTERM) or fails; a driver killed outright loses the
    problems in flight and the results of at most the last `flush_interval_s`, never writes one
    twice, and a re-run searches only what is missing. `observer` sees the workers once their
    engines are up and before they are shut down (benchmarks read their counters there).

    Before labelling, the job is calibrated (`apsgen.runner.calibrate`) unless its output holds a
    calibration already; `calibrate_only` stops there.
    """
    t0 = time.monotonic()
    fp = fingerprint(spec)
    out = output or spec.output_dir()
    if new_version:
        out = f"{out.rstrip('/')}-{fp[:8]}"
    report: LoadReport = load_problems(spec.dataset, exclude=spec.exclude, simulated=spec.policy.simulated)
    log.info("%s", report.summary())

    store = OutputStore(out)
    manifest = store.open_for_job(
        Manifest(
            job=spec.name,
            fingerprint=fp,
            spec=spec.model_dump(mode="json"),
            apsgen_version=__version__,
            created_at=now().isoformat(),
        ),
    )
    done = store.done_ids()
    todo = deque(p for p in report.problems if p.id not in done)
    summary = RunSummary(
        job=spec.name,
        output=out,
        fingerprint=fp,
        total_problems=len(report.problems),
        already_done=len(report.problems) - len(todo),
        bad_rows=len(report.bad_rows),
        duplicates=report.n_duplicates,
        excluded=report.n_excluded,
    )
    manifest.total_problems = max(manifest.total_problems, len(report.problems))
    from apsgen.runner.calibrate import load_calibration

    calibration = load_calibration(store, spec)  # before any worker starts: a foreign one is refused now
    if calibration is not None:
        summary.calibration = calibration.render()
    from apsgen.search.calibration import needs_calibration

    if calibrate_only and (calibration is not None or not needs_calibration(spec.search)):
        summary.wall_s = time.monotonic() - t0
        return summary
    if not calibrate_only and not todo:
        log.info("nothing to do: all %d problems are in %s", len(report.problems), out)
        summary.wall_s = time.monotonic() - t0
        _record_run(store, manifest, summary)  # stats read the input counts from the last run
        return summary

    init_ray(verbose)
    with _sigterm_unwinds():
        pool = WorkerPool(spec, verbose, worker_kwargs)
        try:
            infos = pool.wait_ready()
            info = infos[0]
            if observer is not None:
                observer.workers_ready(list(pool.actors), infos)
            prov = Provenance(
                policy_model=info.policy_model,
                policy_revision=info.policy_revision,
                prompt_template_hash=info.prompt_template_hash,
                sampling=json.dumps(spec.sampling.model_dump(), sort_keys=True),
                search_params=json.dumps(spec.search.model_dump(), sort_keys=True),
                verifier=info.verifier,
                apsgen_version=__version__,
                job_fingerprint=fp,
            )
            from apsgen.runner.calibrate import ensure_calibration

            calibration = calibration or ensure_calibration(spec, pool, report.problems, store, fp)
            if calibration is not None:
                summary.calibration = calibration.render()
                manifest.calibration = calibration.summary()
                store.write_manifest(manifest)
            if calibrate_only:
                return summary
            feed = _Feed(spec, pool, store, manifest, summary, prov, todo, flush_interval_s, show_progress, on_result,
                         calibration)
            try:
                feed.run()
            finally:
                feed.close()
                if observer is not None:
                    observer.workers_done(list(pool.actors))
        finally:
            summary.worker_restarts = pool.restarts
            summary.wall_s = time.monotonic() - t0
            _record_run(store, manifest, summary)
            pool.shutdown()
    return summary


def _record_run(store: OutputStore, manifest: Manifest, summary: RunSummary) -> None:
    manifest.failed = {**manifest.failed, **summary.failed}
    manifest.runs = [*manifest.runs[-49:], {"finished_at": now().isoformat(), **summary.to_dict()}]
    manifest.totals = _totals(store)
    manifest.updated_at = now().isoformat()
    store.write_manifest(manifest)


COLLECT_S = 0.1  # how long the driver lets results gather before it takes them


BATCH_MAX = 16  # problems per actor call at most: Ray's per-call cost is paid per batch


def batch_size(cap: int, remaining: int, workers: int) -> int:
    """Problems per actor call: a quarter of a worker's slots (so each worker holds several batches
    and refills as they finish), at most BATCH_MAX, and smaller at the end of the queue so the last
    problems spread over every worker instead of waiting behind each other in one batch."""
    size = max(1, min(BATCH_MAX, cap // 4))
    return max(1, min(size, remaining // max(1, 2 * workers)))


class _Feed:
    """Feeds problems to the workers in batches with backpressure and commits results as they come back."""

    def __init__(self, spec, pool, store, manifest, summary, prov, todo, flush_interval_s, show_progress, on_result,
                 calibration=None):
        import ray

        self.spec, self.pool, self.store, self.manifest = spec, pool, store, manifest
        self.summary, self.prov, self.todo = summary, prov, todo
        # Put once and sent by reference with every batch: all problems are judged against the same one.
        self.calibration = None if calibration is None else ray.put(calibration)
        self.flush_interval_s = flush_interval_s
        self.on_result = on_result
        self.in_flight: dict[Any, tuple[list[Problem], int]] = {}  # object ref -> (problems, worker index)
        self.load = [0] * len(pool.actors)  # problems in flight per worker
        self.attempts: Counter = Counter()
        self.buf_steps: list[dict] = []
        self.buf_problems: list[dict] = []
        self.part = store.next_part()
        self.last_flush = time.monotonic()
        self.cap = spec.runner.max_concurrent_trees
        self.progress = Progress(total=len(todo), enabled=show_progress)

    def run(self) -> None:
        import ray

        self.submit()
        while self.in_flight:
            # One wait per COLLECT_S for everything finished by then: a wait costs time in the number
            # of refs it is given, so waking per result would cost the driver O(in flight) each.
            refs = list(self.in_flight)
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=COLLECT_S)
            for ref in ready:
                if ref in self.in_flight:  # a lost worker's other refs were already requeued
                    self.collect(ref)
            self.submit()
            if len(self.buf_steps) >= self.spec.runner.shard_rows or (
                time.monotonic() - self.last_flush > self.flush_interval_s
            ):
                self.flush()

    def submit(self) -> None:
        # Backpressure: each worker holds at most `cap` searches; the rest wait on the driver.
        while self.todo:
            idx = min(range(len(self.load)), key=self.load.__getitem__)
            size = batch_size(self.cap, len(self.todo), len(self.load))
            if self.cap - self.load[idx] < size:  # the least loaded worker has no room for a batch
                return
            batch = [self.todo.popleft() for _ in range(min(size, len(self.todo)))]
            ref = self.pool.actors[idx].search_batch.remote(batch, self.calibration)
            self.in_flight[ref] = (batch, idx)
            self.load[idx] += len(batch)

    def collect(self, ref) -> None:
        import ray

        problems, idx = self.in_flight.pop(ref)
        self.load[idx] -= len(problems)
        try:
            outcomes = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as e:
            self.worker_lost(idx, problems, e)
            return
        except ray.exceptions.RayError as e:  # lost object, task error outside the search: infrastructure
            for problem in problems:
                self.retry(problem, f"{type(e).__name__}: {_last_line(e)}")
            return
        for problem, outcome in zip(problems, outcomes, strict=True):
            self.record(problem, outcome)

    def record(self, problem: Problem, outcome) -> None:
        self.summary.problems_by_node[outcome.node] += 1
        if outcome.error is not None:
            self.summary.failed[problem.id] = outcome.error
            self.progress.update(failed=1)
            return
        result = outcome.result
        if result.status == "failed":  # its labels so far are kept; the problem is listed as failed
            self.summary.failed[problem.id] = result.error or "search failed"
        created = now()
        self.buf_steps.extend(step_rows(problem, result, self.prov, created))
        self.buf_problems.append(problem_row(problem, result, self.summary.fingerprint, created))
        self.manifest.failed.pop(problem.id, None)
        _account(self.summary, result)
        self.progress.update(done=1, rollouts=result.n_rollouts, tokens=result.generated_tokens)
        if self.on_result is not None:
            self.on_result(problem, result)

    def worker_lost(self, idx: int, problems: list[Problem], err: BaseException) -> None:
        """A dead worker's problems go back to the queue and a new worker takes its slot."""
        lost = problems + [p for batch, i in self.in_flight.values() if i == idx for p in batch]
        for ref in [r for r, (_, i) in self.in_flight.items() if i == idx]:
            self.in_flight.pop(ref)
        self.load[idx] = 0
        log.warning("worker %d died (%s); replacing it and requeueing %d problems", idx, type(err).__name__, len(lost))
        self.pool.replace(idx)
        for p in lost:
            self.retry(p, f"worker lost while searching it: {type(err).__name__}: {_last_line(err)}")

    def retry(self, problem: Problem, why: str) -> None:
        """Infrastructure errors are retried a bounded number of times, then recorded."""
        self.attempts[problem.id] += 1
        if self.attempts[problem.id] > self.spec.runner.max_retries:
            self.summary.failed[problem.id] = f"{why} (tried {self.attempts[problem.id]} times)"
            self.progress.update(failed=1)
        else:
            log.info("problem %s goes back to the queue: %s", problem.id, why)
            self.todo.appendleft(problem)

    def flush(self) -> None:
        """Commit the buffered results as one shard pair, then the manifest."""
        if self.buf_problems:
            self.store.write_part(self.part, self.buf_steps, self.buf_problems)
            self.part += 1
            self.buf_steps, self.buf_problems = [], []
            self.manifest.failed = {**self.manifest.failed, **self.summary.failed}
            self.manifest.updated_at = now().isoformat()
            self.store.write_manifest(self.manifest)
        self.last_flush = time.monotonic()

    def close(self) -> None:
        # Everything buffered is a whole result: safe to commit on any way out.
        try:
            self.flush()
        finally:
            self.progress.close()


def _last_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[-1][:300] if lines else ""


def _account(summary: RunSummary, result) -> None:
    if result.status == "skipped":
        summary.skipped[result.skip_reason or "unknown"] += 1
    elif result.status == "searched":
        summary.searched += 1
    summary.rollouts += result.n_rollouts
    summary.policy_calls += result.n_policy_calls
    summary.prompt_tokens += result.prompt_tokens
    summary.generated_tokens += result.generated_tokens
    summary.steps += result.n_estimated
    summary.positive += result.n_positive
    summary.negative += result.n_negative
    summary.undecided += result.n_undecided
    summary.first_errors += result.n_first_errors


def _totals(store: OutputStore) -> dict[str, float]:
    t = store.read_problem_columns(["status", "n_rollouts", "generated_tokens", "n_steps", "elapsed_s"])
    if t.num_rows == 0:
        return {}
    status = Counter(t.column("status").to_pylist())
    return {
        "problems_done": t.num_rows,
        "searched": status.get("searched", 0),
        "skipped": status.get("skipped", 0),
        "rollouts": sum(t.column("n_rollouts").to_pylist()),
        "generated_tokens": sum(t.column("generated_tokens").to_pylist()),
        "steps": sum(t.column("n_steps").to_pylist()),
        "search_seconds": round(sum(t.column("elapsed_s").to_pylist()), 1),
    }
