"""Shared helpers for tests that run a job through Ray: a small simulated job, a driver in its own
process group to kill, waiting for committed problems, and checking each problem landed once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from apsgen.config import parse_spec
from apsgen.io.store import OutputStore

REPO = Path(__file__).resolve().parents[1]


def _spec(output: Path, *, limit: int = 24, latency_s: float = 0.0, workers: int = 1, trees: int = 8, dataset=None,
          keep_rollouts: bool = False):
    return parse_spec(
        {
            "name": "failures",
            "dataset": dataset or {"path": "simulated", "limit": limit},
            "policy": {
                "backend": "simulated",
                "model": "simulated",
                "simulated": {"min_steps": 3, "max_steps": 6, "success_rate": [0.5, 0.9], "latency_s": latency_s},
            },
            "search": {"k": 4, "screen_samples": 8, "max_searches": 4},
            "runner": {"num_workers": workers, "max_concurrent_trees": trees, "max_retries": 2,
                       "keep_rollouts": keep_rollouts},
            "output": str(output),
        }
    )


def _ids_once(output: Path) -> list[str]:
    """Every problem id in the output, checking that no problem or step row is there twice."""
    store = OutputStore(str(output))
    ids = store.read_problems().column("problem_id").to_pylist()
    assert len(ids) == len(set(ids)), [i for i, c in Counter(ids).items() if c > 1]
    steps = store.read_steps()
    keys = list(zip(steps.column("problem_id").to_pylist(), steps.column("node_id").to_pylist()))
    assert len(keys) == len(set(keys))
    assert set(steps.column("problem_id").to_pylist()) <= set(ids)
    if store.rollout_shards():  # kept rollouts: every problem's, each once
        rollouts = store.read_rollouts(["problem_id", "rollout_id"])
        keys = list(zip(rollouts.column("problem_id").to_pylist(), rollouts.column("rollout_id").to_pylist()))
        assert len(keys) == len(set(keys))
        drawn = dict(zip(ids, store.read_problem_columns(["problem_id", "n_rollouts"]).column("n_rollouts").to_pylist()))
        assert Counter(k[0] for k in keys) == Counter({i: n for i, n in drawn.items() if n})
    return ids


_DRIVER = """
import json, sys
from apsgen.config import parse_spec
from apsgen.runner.driver import run_job
spec = parse_spec(json.loads(sys.argv[1]))
summary = run_job(spec, show_progress=False, flush_interval_s=0.3)
print(json.dumps(summary.to_dict()))
"""


def _start_driver(spec) -> subprocess.Popen:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    # Its own session: the embedded Ray it starts is in its process group, so the test can end
    # every process of that run, whatever the kill left behind.
    return subprocess.Popen(
        [sys.executable, "-c", _DRIVER, json.dumps(spec.model_dump(mode="json"))],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, text=True,
    )


def _wait_for_committed(output: Path, proc: subprocess.Popen, at_least: int, timeout_s: float = 90) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"driver ended before the kill: {proc.communicate()}"
        if (output / "problems").is_dir():
            try:
                n = OutputStore(str(output)).read_problems().num_rows
            except Exception:  # a shard being renamed right now
                n = 0
            if n >= at_least:
                return n
        time.sleep(0.1)
    raise AssertionError(f"no {at_least} committed problems in {timeout_s}s")


def _end_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def on_result(fn):
    """A RunObserver that calls fn(problem, result) for every result (what tests watch a run by)."""
    from apsgen.runner.driver import RunObserver

    class _OnResult(RunObserver):
        def result(self, problem, result):
            fn(problem, result)

    return _OnResult()
