"""Committing a run's results: buffered as they come back, written as one shard pair at a time (at
least every `flush_interval_s`, and on any way out), with the progress bar and the manifest.

A problem's rows are buffered whole, so whatever is flushed is a set of whole problems: a driver
killed outright loses at most the last interval's results, never half a problem.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from apsgen.io.rows import Provenance, now, problem_row, rollout_rows, step_rows
from apsgen.io.store import Manifest, OutputStore
from apsgen.problem import Problem
from apsgen.runner.progress import Progress
from apsgen.runner.summary import RunSummary, account


@dataclass
class Committer:
    store: OutputStore
    manifest: Manifest
    summary: RunSummary
    prov: Provenance
    progress: Progress
    observer: Any  # a RunObserver
    flush_interval_s: float
    shard_rows: int
    keep_rollouts: bool = False  # write each problem's kept completions beside its steps
    buf_steps: list[dict] = field(default_factory=list)
    buf_rollouts: list[dict] = field(default_factory=list)
    buf_problems: list[dict] = field(default_factory=list)
    part: int = -1
    last_flush: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.part < 0:
            self.part = self.store.next_part()

    def record(self, problem: Problem, outcome: Any) -> None:
        """A worker's SearchOutcome for `problem`: its rows buffered, or its error listed."""
        self.summary.problems_by_node[outcome.node] += 1
        if outcome.error is not None:
            self.fail(problem.id, outcome.error)
            return
        result = outcome.result
        if result.status == "failed":  # its labels so far are kept; the problem is listed as failed
            self.summary.failed[problem.id] = result.error or "search failed"
        created = now()
        self.buf_steps.extend(step_rows(problem, result, self.prov, created))
        self.buf_problems.append(problem_row(problem, result, self.summary.fingerprint, created))
        if self.keep_rollouts:
            self.buf_rollouts.extend(rollout_rows(problem, result, self.summary.fingerprint, created))
        self.manifest.failed.pop(problem.id, None)
        account(self.summary, result)
        self.progress.update(done=1, rollouts=result.n_rollouts, tokens=result.generated_tokens)
        self.observer.result(problem, result)

    def fail(self, problem_id: str, why: str) -> None:
        """A problem that will not be searched again in this run."""
        self.summary.failed[problem_id] = why
        self.progress.update(failed=1)

    def flush_if_due(self) -> None:
        if (len(self.buf_steps) >= self.shard_rows or len(self.buf_rollouts) >= 8 * self.shard_rows
                or time.monotonic() - self.last_flush > self.flush_interval_s):
            self.flush()

    def flush(self) -> None:
        """Commit the buffered results as one shard pair, then the manifest."""
        if self.buf_problems:
            self.store.write_part(self.part, self.buf_steps, self.buf_problems,
                                  self.buf_rollouts if self.keep_rollouts else None)
            self.part += 1
            self.buf_steps, self.buf_problems, self.buf_rollouts = [], [], []
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


def record_run(store: OutputStore, manifest: Manifest, summary: RunSummary) -> None:
    """The run's summary and the output's totals into the manifest (stats read them)."""
    manifest.failed = {**manifest.failed, **summary.failed}
    manifest.runs = [*manifest.runs[-49:], {"finished_at": now().isoformat(), **summary.to_dict()}]
    manifest.totals = totals(store)
    manifest.updated_at = now().isoformat()
    store.write_manifest(manifest)


def totals(store: OutputStore) -> dict[str, float]:
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
