"""`apsgen bench NAME`: benchmarks that print figures (see apsgen/bench/)."""

from __future__ import annotations

import importlib

BENCHES = {
    "search": "every label rule and per-step MC on a grid of simulated worlds: precision, recall, tokens per correct first error",
    "checks": "every check that reads a step's text against human first-error labels (ProcessBench files): precision, recall",
    "verify": "the answer verifier vs math-verify: accuracy, checks/s, latency",
    "prm": "the same small PRM trained on each label rule's labels of the same simulated questions: first-error F1 on held-out items, per seed",
    "overhead": "the pipeline's CPU time per rollout (driver + workers, engine excluded) with an instant policy",
    "scale": "a 100,000-problem simulated run: driver CPU per rollout, peak RSS, parts, resume time",
    "engine": "generated tokens/s: apsgen's whole pipeline vs the bare vLLM engine on the same requests",
}


def register(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark")
    bsub = p.add_subparsers(dest="bench", required=True)
    for name, text in BENCHES.items():
        bp = bsub.add_parser(name, help=text)
        try:
            module = importlib.import_module(f"apsgen.bench.{name}")
        except ImportError as e:  # a benchmark's optional dependency is missing
            bp.set_defaults(func=lambda args, e=e: _missing(args, e))
            continue
        module.add_arguments(bp)
        bp.set_defaults(func=module.run)


def _missing(args, err) -> int:
    print(f"apsgen bench {args.bench}: unavailable: {err}")
    return 2
