"""`apsgen eval processbench FILE...`: apsgen's first errors against human labels."""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="score labels against human judgement",
        description="Score apsgen's labels against human ones. `processbench FILE...` labels every item of "
        "ProcessBench-format files (one per subset) with search.mode annotate and reports, per file, accuracy "
        "on erroneous and on correct items, their F1, and the mean F1.",
    )
    p.add_argument("benchmark", choices=["processbench"], help="the benchmark format of FILE")
    p.add_argument("files", nargs="+", metavar="FILE", help="ProcessBench JSON (or JSON lines) files, e.g. gsm8k.json")
    p.add_argument("--job", help="job spec YAML for the policy, engine, search, verify and judge sections "
                   "(its dataset section is ignored)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec value, e.g. --set policy.model=Qwen/Qwen2.5-Math-7B-Instruct (repeatable)")
    p.add_argument("--limit", type=int, help="the first N items of each file")
    p.add_argument("--concurrency", type=int, default=16, help="items labelled at once (default 16)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON line")
    p.set_defaults(func=run)


def _all_simulated(files: list[str]) -> bool:
    from apsgen.config import SimulatedSpec
    from apsgen.eval.processbench import load_items
    from apsgen.policy.simulated import plan_for

    try:
        for f in files:
            for item in load_items(f)[0]:
                plan_for(item.problem, SimulatedSpec())
    except ValueError:
        return False
    return True


def run(args) -> int:
    import yaml

    from apsgen.cli.errors import UserError
    from apsgen.config import parse_spec
    from apsgen.eval.processbench import ProcessBenchError, evaluate

    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit {args.limit}: expected a positive number of items")
    if args.concurrency < 1:
        raise UserError(f"--concurrency {args.concurrency}: expected at least 1")
    raw: dict = {}
    if args.job:
        with open(args.job) as f:
            raw = yaml.safe_load(f) or {}
        if not isinstance(raw, dict):
            raise UserError(f"job spec {args.job!r}: expected a mapping at the top level")
    raw.setdefault("name", "processbench")
    raw["dataset"] = {"path": "processbench", "steps_column": "steps"}  # the items are the dataset
    raw.setdefault("search", {})["mode"] = "annotate"
    try:
        policy_given = bool(args.job and "policy" in raw) or any(o.startswith("policy.") for o in args.overrides)
        if not policy_given and _all_simulated(args.files):
            raw["policy"] = {"backend": "simulated"}
            print("policy: simulated (every item is a simulated-policy question; "
                  "pass --job or --set policy.backend=... for a model)", file=sys.stderr)
        spec = parse_spec(raw, args.job or "eval settings", args.overrides)
        report = evaluate(args.files, spec, concurrency=args.concurrency, limit=args.limit)
    except ProcessBenchError as e:
        raise UserError(str(e)) from None
    if args.json:
        print(json.dumps(report.as_json(), sort_keys=True))
    else:
        print(report.render())
    return 0
