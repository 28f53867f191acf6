"""`apsgen bench overhead`: what the pipeline itself costs per rollout, the engine left out.

The simulated policy answers at once, and the whole pipeline runs around it: the driver feeding
problems through Ray, SearchWorker actors running OmegaPRM searches, the verifier grading every
rollout, shards written. The figure is the CPU time of the driver and worker processes (the
verifier's pool included) per rollout, less the time spent inside the policy's `generate`, counted
from the moment the workers are up to the moment the last result is in. At ≤ 0.5 ms per rollout
one CPU core keeps a GPU fed at 2,000 rollouts/s.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from typing import Any

from apsgen.bench.common import measured, simulated_spec
from apsgen.runner.driver import RunObserver

TARGET_CPU_MS_PER_ROLLOUT = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--problems", type=int, default=200, help="simulated problems (default 200)")
    parser.add_argument("--workers", type=int, default=1, help="SearchWorker actors (default 1)")
    parser.add_argument("--trees", type=int, default=64, help="searches in flight per worker (default 64)")
    parser.add_argument("--k", type=int, default=8, help="rollouts per MC estimate (default 8)")
    parser.add_argument("--max-searches", type=int, default=50, help="OmegaPRM selections per question")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def bench_spec(args: argparse.Namespace, output: str):  # type: ignore[no-untyped-def]
    return simulated_spec("bench-overhead", args.problems, output,
                          {"min_steps": 4, "max_steps": 16, "success_rate": [0.5, 0.95]}, args.workers, args.trees,
                          search={"k": args.k, "screen_samples": 32, "max_searches": args.max_searches})


def _driver_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class CpuMeter(RunObserver):
    """Reads the driver's and the workers' CPU counters when the workers are up and when done."""

    def __init__(self) -> None:
        self.start: dict[str, float] = {}
        self.end: dict[str, float] = {}
        self.t_start = self.t_end = 0.0

    @staticmethod
    def _read(actors: list[Any]) -> dict[str, float]:
        import ray

        workers = ray.get([a.stats.remote() for a in actors])
        return {
            "driver": _driver_cpu_s(),
            "workers": sum(w["process_cpu_s"] for w in workers),
            "policy": sum((w["policy"] or {}).get("cpu_s", 0.0) for w in workers),
        }

    def workers_ready(self, actors: list[Any], infos: list[Any]) -> None:
        self.start = self._read(actors)
        self.t_start = time.monotonic()

    def workers_done(self, actors: list[Any]) -> None:
        self.t_end = time.monotonic()
        self.end = self._read(actors)

    def delta(self, key: str) -> float:
        return self.end[key] - self.start[key]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from apsgen.bench.instrument import counting
    from apsgen.runner.driver import run_job

    out = tempfile.mkdtemp(prefix="apsgen-bench-overhead-")
    try:
        meter = CpuMeter()
        summary = run_job(
            bench_spec(args, out),
            output=out,
            show_progress=False,
            flush_interval_s=30.0,
            policy_wrapper=counting,
            observer=meter,
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)
    wall = meter.t_end - meter.t_start
    driver, workers, policy = meter.delta("driver"), meter.delta("workers"), meter.delta("policy")
    pipeline = driver + workers - policy
    rollouts = summary.rollouts
    return {
        "problems": summary.total_problems,
        "workers": args.workers,
        "trees_per_worker": args.trees,
        "rollouts": rollouts,
        "policy_calls": summary.policy_calls,
        "wall_s": round(wall, 2),
        "rollouts_per_s": round(rollouts / wall, 1) if wall else None,
        "driver_cpu_s": round(driver, 3),
        "worker_cpu_s": round(workers, 3),
        "policy_cpu_s": round(policy, 3),
        "cpu_ms_per_rollout": round(1000 * pipeline / rollouts, 4) if rollouts else None,
        "driver_cpu_ms_per_rollout": round(1000 * driver / rollouts, 4) if rollouts else None,
        "target_cpu_ms_per_rollout": TARGET_CPU_MS_PER_ROLLOUT,
    }


def run(args: argparse.Namespace) -> int:
    r = measured(args, measure)
    if r is None:
        return 0
    ok = r["cpu_ms_per_rollout"] is not None and r["cpu_ms_per_rollout"] <= TARGET_CPU_MS_PER_ROLLOUT
    print(f"apsgen bench overhead: {r['problems']} simulated problems, {r['workers']} worker(s) x "
          f"{r['trees_per_worker']} trees, instant policy")
    print(f"  rollouts            {r['rollouts']} in {r['policy_calls']} policy calls, {r['wall_s']}s")
    print(f"  rollouts/s          {r['rollouts_per_s']}")
    print(f"  CPU (s)             driver {r['driver_cpu_s']}, workers {r['worker_cpu_s']} "
          f"(of which policy {r['policy_cpu_s']}, excluded)")
    print(f"  cpu_ms_per_rollout  {r['cpu_ms_per_rollout']}  (driver alone {r['driver_cpu_ms_per_rollout']}; "
          f"target <= {TARGET_CPU_MS_PER_ROLLOUT}: {'met' if ok else 'NOT met'})")
    return 0
