"""`apsgen bench scale`: what the driver costs on a long run, and how fast it resumes.

A large simulated job (default 100,000 problems) runs through the whole pipeline with many
SearchWorker actors sharing this machine (no CPU slot each, as on an embedded Ray) and a small
simulated latency per request. The search is kept cheap (few rollouts per question) so the run is
about the driver, not the searches: it feeds every problem, collects every result, commits a shard
pair every `flush` seconds and rewrites the manifest. Figures: rollouts/s, the driver's CPU ms per
rollout, its peak RSS, the parts written, and the time a second run of the same job takes when
everything is already done (load the dataset, open the output, read the done ids, stop).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from typing import Any

from apsgen.bench.common import measured, simulated_spec

TARGETS = {"driver_cpu_ms_per_rollout": 0.05, "driver_peak_rss_mib": 2048, "resume_s": 30.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--problems", type=int, default=100_000, help="simulated problems (default 100,000)")
    parser.add_argument("--workers", type=int, default=16, help="SearchWorker actors (default 16)")
    parser.add_argument("--trees", type=int, default=32, help="searches in flight per worker (default 32)")
    parser.add_argument("--latency", type=float, default=0.005, help="simulated seconds per request (default 0.005)")
    parser.add_argument("--flush", type=float, default=15.0, help="seconds between shard commits (default 15)")
    parser.add_argument("--output", help="keep the output here (default: a temporary folder, removed)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def bench_spec(args: argparse.Namespace, output: str):  # type: ignore[no-untyped-def]
    return simulated_spec("bench-scale", args.problems, output,
                          {"min_steps": 3, "max_steps": 6, "success_rate": [0.5, 0.95], "tokens_per_step": 8,
                           "latency_s": args.latency}, args.workers, args.trees,
                          search={"k": 4, "screen_samples": 4, "max_searches": 1}, label={"k_max": 8})


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from apsgen.bench.overhead import CpuMeter
    from apsgen.io.store import OutputStore
    from apsgen.runner.driver import run_job

    out = args.output or tempfile.mkdtemp(prefix="apsgen-bench-scale-")
    try:
        meter = CpuMeter()
        spec = bench_spec(args, out)
        summary = run_job(spec, output=out, show_progress=False, flush_interval_s=args.flush, observer=meter)
        run_rss = _peak_rss_mib()
        parts = len(OutputStore(out).committed_pairs())
        t0 = time.monotonic()
        again = run_job(spec, output=out, show_progress=False)
        resume_s = time.monotonic() - t0
    finally:
        if not args.output:
            shutil.rmtree(out, ignore_errors=True)
    wall = meter.t_end - meter.t_start
    driver = meter.delta("driver")
    rollouts = summary.rollouts
    figures = {
        "problems": summary.total_problems,
        "searched_or_skipped": summary.searched + sum(summary.skipped.values()),
        "failed": len(summary.failed),
        "workers": args.workers,
        "rollouts": rollouts,
        "wall_s": round(wall, 1),
        "rollouts_per_s": round(rollouts / wall, 1) if wall else None,
        "driver_cpu_s": round(driver, 2),
        "driver_cpu_ms_per_rollout": round(1000 * driver / rollouts, 4) if rollouts else None,
        "driver_peak_rss_mib": round(run_rss, 1),
        "parts_written": parts,
        "resume_s": round(resume_s, 2),
        "resume_already_done": again.already_done,
        "targets": TARGETS,
    }
    figures["targets_met"] = {
        k: figures[k] is not None and figures[k] <= v for k, v in TARGETS.items()
    }
    return figures


def run(args: argparse.Namespace) -> int:
    r = measured(args, measure)
    if r is None:
        return 0
    print(f"apsgen bench scale: {r['problems']} simulated problems, {r['workers']} workers sharing this machine")
    print(f"  rollouts           {r['rollouts']} in {r['wall_s']} s: {r['rollouts_per_s']} rollouts/s")
    for key in TARGETS:
        print(f"  {key:<26} {r[key]}  (target <= {TARGETS[key]}: {'met' if r['targets_met'][key] else 'NOT met'})")
    print(f"  parts written      {r['parts_written']}; resume found {r['resume_already_done']} already done")
    return 0
