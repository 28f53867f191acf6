"""The SearchWorker actors of one run: placing them, waiting for their engines, replacing the dead."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from apsgen.config import JobSpec
from apsgen.runner.placement import on_cluster, worker_resources

log = logging.getLogger(__name__)

READY_WARN_S = 60.0


class WorkerStartError(RuntimeError):
    """No worker could start its engine: a setting, not bad luck (the message has the cause)."""


class WorkerPool:
    """The worker actors and a handle on each; index i is a slot a replacement takes over."""

    def __init__(self, spec: JobSpec, verbose: bool, policy_wrapper: Callable[[Any], Any] | None = None):
        import ray

        from apsgen.runner.worker import SearchWorker

        self.spec = spec
        self.verbose = verbose
        self.policy_wrapper = policy_wrapper
        self.resources = worker_resources(spec, ray.cluster_resources().get("GPU", 0.0))
        # max_restarts=0: the driver replaces a dead worker itself, so it knows which problems
        # to requeue; Ray restarting it behind our back would hide that.
        # On a cluster the engines spread over the nodes (one GPU box each, not all on the first).
        strategy = {"scheduling_strategy": "SPREAD"} if on_cluster() else {}
        self.cls = ray.remote(SearchWorker).options(
            max_concurrency=spec.runner.max_concurrent_trees + 8, max_restarts=0, **self.resources, **strategy
        )
        self.actors: list[Any] = [self._new() for _ in range(spec.runner.num_workers)]
        self.restarts = 0

    def _new(self) -> Any:
        return self.cls.remote(self.spec.model_dump(), self.verbose, self.policy_wrapper)

    def wait_ready(self) -> list[Any]:
        """Every worker's WorkerInfo once its engine is up; a worker that fails is started again
        (bounded by runner.max_retries), and if none can start the run stops with the reason."""
        import ray

        refs = {a.ready.remote(): i for i, a in enumerate(self.actors)}
        infos: dict[int, Any] = {}
        failures: dict[int, int] = {}
        t0 = last_warn = time.monotonic()
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1, timeout=5.0)
            for ref in done:
                i = refs.pop(ref)
                try:
                    infos[i] = ray.get(ref)
                except ray.exceptions.RayError as e:
                    failures[i] = failures.get(i, 0) + 1
                    if failures[i] > self.spec.runner.max_retries:
                        raise WorkerStartError(
                            f"worker {i} could not start its {self.spec.policy.backend} policy "
                            f"{self.spec.policy.model!r} ({failures[i]} tries): {_cause(e)}"
                        ) from None
                    log.warning("worker %d failed to start (%s); starting it again", i, _cause(e))
                    self.replace(i)
                    refs[self.actors[i].ready.remote()] = i
            if refs and time.monotonic() - last_warn > READY_WARN_S:
                last_warn = time.monotonic()
                log.warning(
                    "still waiting for %d of %d workers after %.0fs (each asks for %s; cluster has %s)",
                    len(refs), len(self.actors), last_warn - t0, self.resources, ray.cluster_resources(),
                )
        return [infos[i] for i in range(len(self.actors))]

    def replace(self, idx: int) -> None:
        import ray

        try:
            ray.kill(self.actors[idx])
        except Exception:  # already gone
            pass
        self.actors[idx] = self._new()
        self.restarts += 1

    def shutdown(self) -> None:
        import ray

        for a in self.actors:
            try:
                ray.get(a.shutdown.remote(), timeout=30)
            except Exception:  # a dead or stuck worker must not block the summary
                pass
            try:
                ray.kill(a)
            except Exception:
                pass


def _cause(err: BaseException) -> str:
    """The innermost error on one line: what a user needs, without Ray's wrapping."""
    cause = getattr(err, "cause", None) or err
    text = " ".join(line.strip() for line in f"{type(cause).__name__}: {cause}".splitlines() if line.strip())
    return text[:800]
