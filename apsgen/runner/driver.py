"""The driver: loads problems, places SearchWorker actors, feeds them with backpressure, replaces
dead workers, writes shards as problems finish, shows one progress bar, and summarises.

The driver holds no GPU; each worker owns one engine for its whole life.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from apsgen import __version__
from apsgen.config import JobSpec
from apsgen.data import LoadReport, load_problems
from apsgen.io.rows import Provenance, now, problem_row, step_rows
from apsgen.io.store import Manifest, OutputStore
from apsgen.problem import Problem
from apsgen.runner.fingerprint import fingerprint
from apsgen.runner.progress import Progress

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 30.0


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
    positive: int = 0
    negative: int = 0
    first_errors: int = 0
    worker_restarts: int = 0
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["skipped"] = dict(self.skipped)
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
            f"  labels        {self.steps} steps: {self.positive} positive (MC>0), {self.negative} negative (MC=0), "
            f"{self.first_errors} first errors located",
            f"  wall time     {self.wall_s:.1f}s" + (f", {self.worker_restarts} worker restarts" if self.worker_restarts else ""),
        ]
        for pid, err in list(self.failed.items())[:5]:
            lines.append(f"  failed {pid}: {err.splitlines()[-1][:160]}")
        return "\n".join(lines)


def init_ray(verbose: bool = False) -> None:
    """Join RAY_ADDRESS when set, else start an embedded Ray on this machine."""
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


def _worker_resources(spec: JobSpec) -> dict[str, float]:
    import ray

    gpus = spec.runner.num_gpus_per_worker
    if gpus is None:
        has_gpu = ray.cluster_resources().get("GPU", 0) > 0 and spec.policy.backend == "vllm"
        gpus = float(spec.policy.engine.tensor_parallel_size) if has_gpu else 0.0
    # Engine actors take no CPU slot: on a 2-core machine one CPU each would leave others pending.
    return {"num_cpus": 0, "num_gpus": gpus}


class _Pool:
    """The worker actors and what each has in flight."""

    def __init__(self, spec: JobSpec, verbose: bool):
        import ray

        from apsgen.runner.worker import SearchWorker

        self.spec = spec
        self.verbose = verbose
        self.cls = ray.remote(SearchWorker).options(
            max_concurrency=spec.runner.max_concurrent_trees + 8, max_restarts=0, **_worker_resources(spec)
        )
        self.actors: list[Any] = [self._new() for _ in range(spec.runner.num_workers)]

    def _new(self):
        return self.cls.remote(self.spec.model_dump(), self.verbose)

    def replace(self, idx: int) -> None:
        import ray

        try:
            ray.kill(self.actors[idx])
        except Exception:  # already gone
            pass
        self.actors[idx] = self._new()


def run_job(
    spec: JobSpec,
    *,
    output: str | None = None,
    verbose: bool = False,
    new_version: bool = False,
    show_progress: bool = True,
    on_result=None,
) -> RunSummary:
    """Run (or resume) a job to completion and return its summary."""
    import ray

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
        new_version=False,
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
    if not todo:
        log.info("nothing to do: all %d problems are in %s", len(report.problems), out)
        summary.wall_s = time.monotonic() - t0
        return summary

    init_ray(verbose)
    pool = _Pool(spec, verbose)
    infos = ray.get([a.ready.remote() for a in pool.actors])
    info = infos[0]
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

    in_flight: dict[Any, tuple[Problem, int]] = {}  # object ref -> (problem, worker index)
    load = [0] * len(pool.actors)
    attempts: Counter = Counter()
    buf_steps: list[dict] = []
    buf_problems: list[dict] = []
    part = store.next_part()
    last_flush = time.monotonic()
    cap = spec.runner.max_concurrent_trees
    progress = Progress(total=len(todo), enabled=show_progress)

    def flush() -> None:
        nonlocal part, last_flush, buf_steps, buf_problems
        if buf_problems:
            store.write_part(part, buf_steps, buf_problems)
            part += 1
            buf_steps, buf_problems = [], []
            manifest.failed = {**manifest.failed, **summary.failed}
            manifest.updated_at = now().isoformat()
            store.write_manifest(manifest)
        last_flush = time.monotonic()

    def submit() -> None:
        # Backpressure: each worker holds at most `cap` searches; the rest wait on the driver.
        while todo:
            idx = min(range(len(load)), key=load.__getitem__)
            if load[idx] >= cap:
                return
            problem = todo.popleft()
            ref = pool.actors[idx].search.remote(problem)
            in_flight[ref] = (problem, idx)
            load[idx] += 1

    try:
        submit()
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            for ref in ready:
                problem, idx = in_flight.pop(ref)
                load[idx] -= 1
                try:
                    outcome = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as e:
                    _requeue_after_worker_loss(pool, idx, problem, in_flight, load, todo, attempts, summary, spec, e)
                    continue
                if outcome.error is not None:
                    summary.failed[problem.id] = outcome.error
                    progress.update(failed=1)
                    continue
                result = outcome.result
                created = now()
                buf_steps.extend(step_rows(problem, result, prov, created))
                buf_problems.append(problem_row(problem, result, fp, created))
                manifest.failed.pop(problem.id, None)
                _account(summary, result)
                progress.update(done=1, rollouts=result.n_rollouts, tokens=result.generated_tokens)
                if on_result is not None:
                    on_result(problem, result)
            submit()
            if len(buf_steps) >= spec.runner.shard_rows or time.monotonic() - last_flush > FLUSH_INTERVAL_S:
                flush()
        flush()
    finally:
        progress.close()
        summary.wall_s = time.monotonic() - t0
        manifest.runs = [*manifest.runs[-49:], {"finished_at": now().isoformat(), **summary.to_dict()}]
        manifest.totals = _totals(store)
        store.write_manifest(manifest)
        for a in pool.actors:
            try:
                ray.get(a.shutdown.remote(), timeout=30)
            except Exception:  # a dead or stuck worker must not block the summary
                pass
            ray.kill(a)
    return summary


def _requeue_after_worker_loss(pool, idx, problem, in_flight, load, todo, attempts, summary, spec, err) -> None:
    """A dead worker's problems go back to the queue; the worker is replaced once."""
    lost = [problem] + [p for ref, (p, i) in list(in_flight.items()) if i == idx]
    for ref in [r for r, (_, i) in in_flight.items() if i == idx]:
        in_flight.pop(ref)
    load[idx] = 0
    log.warning("worker %d died (%s); replacing it and requeueing %d problems", idx, type(err).__name__, len(lost))
    pool.replace(idx)
    summary.worker_restarts += 1
    for p in lost:
        attempts[p.id] += 1
        if attempts[p.id] > spec.runner.max_retries:
            summary.failed[p.id] = f"worker lost {attempts[p.id]} times while searching it: {err}"
        else:
            todo.appendleft(p)


def _account(summary: RunSummary, result) -> None:
    if result.status == "skipped":
        summary.skipped[result.skip_reason or "unknown"] += 1
    else:
        summary.searched += 1
    summary.rollouts += result.n_rollouts
    summary.policy_calls += result.n_policy_calls
    summary.prompt_tokens += result.prompt_tokens
    summary.generated_tokens += result.generated_tokens
    summary.steps += len(result.steps)
    summary.positive += result.n_positive
    summary.negative += result.n_negative
    summary.first_errors += sum(1 for s in result.steps if s.is_first_error)


def _totals(store: OutputStore) -> dict[str, float]:
    t = store.read_problems()
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
