"""Feeding problems to the workers: batches per actor call, backpressure per worker, bounded retries
of infrastructure errors, and a lost worker's problems requeued while a new worker takes its slot.

The feeder decides where each problem goes and when it is given up on; what comes back goes to a
`Sink`: the job's `Committer`, which buffers and writes it, or the calibration stage's collector.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from apsgen.pipeline import LabelSettings
from apsgen.problem import Problem
from apsgen.runner.pool import WorkerPool

log = logging.getLogger(__name__)

COLLECT_S = 0.1  # how long the driver lets results gather before it takes them
BATCH_MAX = 16  # problems per actor call at most: Ray's per-call cost is paid per batch


def batch_size(cap: int, remaining: int, workers: int) -> int:
    """Problems per actor call: a quarter of a worker's slots (so each worker holds several batches
    and refills as they finish), at most BATCH_MAX, and smaller at the end of the queue so the last
    problems spread over every worker instead of waiting behind each other in one batch."""
    size = max(1, min(BATCH_MAX, cap // 4))
    return max(1, min(size, remaining // max(1, 2 * workers)))


class Sink(Protocol):
    """Where a feeder's outcomes go: the job's `Committer` (rows), or the calibration stage's
    collector (results to fit)."""

    def record(self, problem: Problem, outcome: Any) -> None: ...

    def fail(self, problem_id: str, why: str) -> None: ...

    def flush_if_due(self) -> None: ...


@dataclass
class Feeder:
    pool: WorkerPool
    todo: deque[Problem]
    cap: int  # searches in flight per worker (runner.max_concurrent_trees)
    max_retries: int
    settings: LabelSettings
    calibration: Any = None  # a Ray object ref, put once and sent with every batch
    in_flight: dict[Any, tuple[list[Problem], int]] = field(default_factory=dict)  # ref -> (problems, worker)
    load: list[int] = field(default_factory=list)  # problems in flight per worker
    attempts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.load = [0] * len(self.pool.actors)

    def run(self, commit: Sink) -> None:
        """Until every problem is back (searched, failed, or given up on)."""
        import ray

        self.submit()
        while self.in_flight:
            # One wait per COLLECT_S for everything finished by then: a wait costs time in the number
            # of refs it is given, so waking per result would cost the driver O(in flight) each.
            refs = list(self.in_flight)
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=COLLECT_S)
            for ref in ready:
                if ref in self.in_flight:  # a lost worker's other refs were already requeued
                    self.collect(ref, commit)
            self.submit()
            commit.flush_if_due()

    def submit(self) -> None:
        # Backpressure: each worker holds at most `cap` searches; the rest wait on the driver.
        while self.todo:
            idx = min(range(len(self.load)), key=self.load.__getitem__)
            size = batch_size(self.cap, len(self.todo), len(self.load))
            if self.cap - self.load[idx] < size:  # the least loaded worker has no room for a batch
                return
            batch = [self.todo.popleft() for _ in range(min(size, len(self.todo)))]
            ref = self.pool.actors[idx].label_batch.remote(batch, self.settings, self.calibration)
            self.in_flight[ref] = (batch, idx)
            self.load[idx] += len(batch)

    def collect(self, ref: Any, commit: Sink) -> None:
        import ray

        problems, idx = self.in_flight.pop(ref)
        self.load[idx] -= len(problems)
        try:
            outcomes = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as e:
            self.worker_lost(idx, problems, e, commit)
            return
        except ray.exceptions.RayError as e:  # lost object, task error outside the search: infrastructure
            for problem in problems:
                self.retry(problem, f"{type(e).__name__}: {last_line(e)}", commit)
            return
        for problem, outcome in zip(problems, outcomes, strict=True):
            commit.record(problem, outcome)

    def worker_lost(self, idx: int, problems: list[Problem], err: BaseException, commit: Sink) -> None:
        """A dead worker's problems go back to the queue and a new worker takes its slot."""
        lost = problems + [p for batch, i in self.in_flight.values() if i == idx for p in batch]
        for ref in [r for r, (_, i) in self.in_flight.items() if i == idx]:
            self.in_flight.pop(ref)
        self.load[idx] = 0
        log.warning("worker %d died (%s); replacing it and requeueing %d problems", idx, type(err).__name__, len(lost))
        self.pool.replace(idx)
        for p in lost:
            self.retry(p, f"worker lost while searching it: {type(err).__name__}: {last_line(err)}", commit)

    def retry(self, problem: Problem, why: str, commit: Sink) -> None:
        """Infrastructure errors are retried a bounded number of times, then recorded."""
        self.attempts[problem.id] += 1
        if self.attempts[problem.id] > self.max_retries:
            commit.fail(problem.id, f"{why} (tried {self.attempts[problem.id]} times)")
        else:
            log.info("problem %s goes back to the queue: %s", problem.id, why)
            self.todo.appendleft(problem)


def last_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[-1][:300] if lines else ""
