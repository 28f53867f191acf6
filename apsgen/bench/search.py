"""`apsgen bench search`: OmegaPRM against the per-step MC baseline on one simulated problem set.

Both modes see the same problems, seeds and screening samples, and the real verifier grades every
rollout. Accuracy is checked against the simulated policy's planted first errors: a located first
error is right when the state's last step holds the first wrong result of its prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from collections import Counter
from typing import Any

from apsgen.config import SearchSpec, SimulatedSpec
from apsgen.policy.base import Sampling
from apsgen.policy.simulated import SimulatedPolicy, score_first_errors, simulated_problems
from apsgen.problem import Problem
from apsgen.search import ProblemResult, run_search

log = logging.getLogger(__name__)

MODES = ("omegaprm", "per_step_mc")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--problems", type=int, default=200, help="simulated problems (default 200)")
    parser.add_argument("--k", type=int, default=8, help="rollouts per MC estimate (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--max-searches", type=int, default=100, help="OmegaPRM selections per question")
    parser.add_argument("--screen-samples", type=int, default=32)
    parser.add_argument("--step-mode", choices=["delimiter", "tokens"], default="delimiter")
    parser.add_argument(
        "--recover-rate",
        type=float,
        default=SimulatedSpec().recover_rate,
        help="chance that a solution gone wrong still ends with the right answer (default: the simulated policy's)",
    )
    parser.add_argument("--mc-threshold", type=float, default=0.0, help="search.mc_threshold (paper: 0)")
    parser.add_argument("--pool-min-mc", type=float, default=0.0, help="search.pool_min_mc (paper: 0)")
    parser.add_argument(
        "--robust",
        action="store_true",
        help="the opt-in noise guard for both modes: mc_threshold=1/k, pool_min_mc=3/k "
        "(a prefix counts as right only above one lucky rollout in k)",
    )


def bench_spec(args: argparse.Namespace) -> SimulatedSpec:
    # 4-16 steps; each problem's chance of a fully right solution is drawn from [0.5, 0.95], so
    # the policy succeeds from any correct prefix at least half the time (the targets' setting).
    return SimulatedSpec(min_steps=4, max_steps=16, success_rate=(0.5, 0.95), recover_rate=args.recover_rate)


def search_spec(args: argparse.Namespace, mode: str) -> SearchSpec:
    return SearchSpec(
        mode=mode,  # type: ignore[arg-type]
        k=args.k,
        max_searches=args.max_searches,
        screen_samples=args.screen_samples,
        step_mode=args.step_mode,
        mc_threshold=args.mc_threshold,
        pool_min_mc=args.pool_min_mc,
    )


def summarise(problems: list[Problem], results: list[ProblemResult], spec: SimulatedSpec) -> dict[str, Any]:
    located, right = score_first_errors(problems, results, spec)
    tokens = sum(r.generated_tokens for r in results)
    skipped = Counter(r.skip_reason for r in results if r.status == "skipped")
    return {
        "problems_searched": sum(r.status == "searched" for r in results),
        "problems_skipped": dict(sorted(skipped.items())),
        "policy_calls": sum(r.n_policy_calls for r in results),
        "rollouts": sum(r.n_rollouts for r in results),
        "generated_tokens": tokens,
        "labelled_steps": sum(len(r.steps) for r in results),
        "first_errors_located": located,
        "first_error_accuracy": right / located if located else None,
        "tokens_per_located_error": tokens / located if located else None,
    }


async def _run_mode(args: argparse.Namespace, mode: str, problems: list[Problem], spec: SimulatedSpec, verifier: object) -> list[ProblemResult]:
    policy = SimulatedPolicy(spec, seed=args.seed)
    search = search_spec(args, mode)
    sampling = Sampling(max_tokens=1024)
    return await asyncio.gather(*(run_search(p, policy, verifier, search, sampling, seed=args.seed) for p in problems))


def run(args: argparse.Namespace) -> int:
    from apsgen.verify import Verifier

    if args.robust:
        args.mc_threshold, args.pool_min_mc = 1 / args.k, 3 / args.k
    spec = bench_spec(args)
    problems = simulated_problems(args.problems, spec, seed=args.seed)
    report: dict[str, Any] = {}
    with Verifier() as verifier:
        for mode in MODES:
            t0 = time.perf_counter()
            results = asyncio.run(_run_mode(args, mode, problems, spec, verifier))
            report[mode] = summarise(problems, results, spec)
            report[mode]["wall_s"] = round(time.perf_counter() - t0, 2)
    a, b = report["omegaprm"]["tokens_per_located_error"], report["per_step_mc"]["tokens_per_located_error"]
    report["token_ratio"] = b / a if a and b else None
    report["settings"] = {
        "problems": args.problems,
        "k": args.k,
        "seed": args.seed,
        "max_searches": args.max_searches,
        "screen_samples": args.screen_samples,
        "step_mode": args.step_mode,
        "recover_rate": args.recover_rate,
        "mc_threshold": args.mc_threshold,
        "pool_min_mc": args.pool_min_mc,
        "steps": [spec.min_steps, spec.max_steps],
        "success_rate": list(spec.success_rate or ()),
    }
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(format_table(report))
    return 0


def format_table(report: dict[str, Any]) -> str:
    rows = [
        ("problems searched", "problems_searched", "{}"),
        ("problems skipped", "problems_skipped", "{}"),
        ("policy calls", "policy_calls", "{:,}"),
        ("rollouts", "rollouts", "{:,}"),
        ("generated tokens", "generated_tokens", "{:,}"),
        ("labelled steps", "labelled_steps", "{:,}"),
        ("first errors located", "first_errors_located", "{:,}"),
        ("first-error accuracy", "first_error_accuracy", "{:.3f}"),
        ("gen. tokens / located error", "tokens_per_located_error", "{:,.0f}"),
        ("wall seconds", "wall_s", "{}"),
    ]
    s = report["settings"]
    lines = [
        f"apsgen bench search: {s['problems']} simulated problems ({s['steps'][0]}-{s['steps'][1]} steps, "
        f"solve rate {s['success_rate'][0]}-{s['success_rate'][1]}, recover {s['recover_rate']}), k={s['k']}, "
        f"seed={s['seed']}, {s['step_mode']} steps, max_searches={s['max_searches']}, "
        f"mc_threshold={s['mc_threshold']}, pool_min_mc={s['pool_min_mc']}",
        f"{'':30}{'omegaprm':>16}{'per_step_mc':>16}",
    ]
    for label, key, fmt in rows:
        cells = []
        for mode in MODES:
            v = report[mode][key]
            cells.append("-" if v is None else fmt.format(v) if not isinstance(v, dict) else ",".join(f"{k}:{n}" for k, n in v.items()) or "0")
        lines.append(f"{label:30}{cells[0]:>16}{cells[1]:>16}")
    ratio = report["token_ratio"]
    lines.append(f"token ratio (per-step MC / OmegaPRM, tokens per located error): {ratio:.2f}" if ratio else "token ratio: -")
    return "\n".join(lines)
