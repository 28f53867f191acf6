"""`apsgen eval processbench FILE...`: apsgen's first errors (annotate), or a trained PRM's (--prm), against
human labels."""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="score labels against human judgement",
        description="Score apsgen's labels against human ones. `processbench FILE...` labels every item of "
        "ProcessBench-format files (one per subset) with search.mode annotate and reports, per file, accuracy "
        "on erroneous and on correct items, their F1, and the mean F1. With --prm MODEL it scores a trained "
        "PRM on the same files the way ProcessBench scores PRMs, next to annotate when a policy is given.",
    )
    p.add_argument("benchmark", choices=["processbench"], help="the benchmark format of FILE")
    p.add_argument("files", nargs="+", metavar="FILE", help="ProcessBench JSON (or JSON lines) files, e.g. gsm8k.json")
    p.add_argument("--job", help="job spec YAML for the policy, engine, search, verify and judge sections "
                   "(its dataset section is ignored)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec value, e.g. --set policy.model=Qwen/Qwen2.5-Math-7B-Instruct (repeatable)")
    p.add_argument("--limit", type=int, help="the first N items of each file (ProcessBench lists its erroneous "
                   "items first: use --sample for a figure)")
    p.add_argument("--sample", type=int, help="N items of each file, seeded, erroneous and correct ones in the "
                   "file's proportions")
    p.add_argument("--sample-seed", type=int, default=0, help="the seed of --sample (default 0)")
    p.add_argument("--concurrency", type=int, default=16, help="items labelled at once (default 16)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON line")
    g = p.add_argument_group("gold answers (annotate needs one per item; ProcessBench has none)")
    g.add_argument("--answers", action="append", default=[], metavar="FILE_OR_HUB_NAME",
                   help="a dataset of questions with gold answers to join the items to by problem text, e.g. "
                   "gsm8k_test.jsonl or openai/gsm8k (repeatable; the first to give a problem wins)")
    g.add_argument("--answers-columns", metavar="QUESTION,ANSWER",
                   help="its question and answer columns (default: question or problem; answer, final_answer "
                   "or solution)")
    g.add_argument("--answers-split", default="test", help="its split, for a Hub dataset (default test)")
    g.add_argument("--answers-config", help="its config name, for a Hub dataset (e.g. main for openai/gsm8k)")
    g.add_argument("--coverage", action="store_true",
                   help="print each file's gold-answer coverage and stop (nothing is run)")
    g.add_argument("--allow-partial", action="store_true",
                   help="give an F1 for a subset even when most of its erroneous items have no gold answer")
    m = p.add_argument_group("a trained PRM")
    m.add_argument("--prm", metavar="MODEL", help="a PRM folder: one `apsgen train prm` or TRL's PRMTrainer saved "
                   "(token classification), or a Qwen2.5-Math-PRM (with --trust-remote-code)")
    m.add_argument("--threshold", default="0.5",
                   help="a step scored under this is wrong (default 0.5, ProcessBench's argmax); auto: the best "
                   "F1 on the first file, applied to all")
    m.add_argument("--separator", help="the step separator the PRM was trained with (default: the one "
                   "`apsgen train` recorded, else \\n)")
    m.add_argument("--max-length", type=int, help="the PRM's context in tokens (default: the model's); longer "
                   "items are counted and skipped")
    m.add_argument("--trust-remote-code", action="store_true", help="run the code a PRM folder ships (Qwen2.5-Math-PRM)")
    m.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda when there is one)")
    m.add_argument("--prm-only", action="store_true", help="with --prm: do not run annotate even when a policy is given")
    p.set_defaults(func=run)


def _all_simulated(files: list[str]) -> bool:
    from apsgen.config import SimulatedSpec
    from apsgen.eval.processbench import load_items
    from apsgen.worlds.chain import plan_for

    try:
        for f in files:
            for item in load_items(f)[0]:
                plan_for(item.problem, SimulatedSpec())
    except ValueError:
        return False
    return True


def _answer_sources(args) -> list:
    from apsgen.cli.errors import UserError
    from apsgen.eval.processbench import AnswerSource

    q = a = None
    if args.answers_columns:
        parts = [x.strip() for x in args.answers_columns.split(",")]
        if len(parts) != 2 or not all(parts):
            raise UserError(f"--answers-columns {args.answers_columns!r}: expected QUESTION,ANSWER")
        q, a = parts
    return [AnswerSource(path=src, question_column=q, answer_column=a, split=args.answers_split,
                         name=args.answers_config) for src in args.answers]


def _threshold(text: str) -> float | str:
    from apsgen.cli.errors import UserError

    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise UserError(f"--threshold {text!r}: expected a probability between 0 and 1, or auto")
    return value


def _side_by_side(prm_report, annotate_report) -> str:
    by_name = {s.name: s for s in annotate_report.subsets}
    lines = ["F1 per subset: the PRM and annotate on the same files",
             f"{'subset':<22} {'PRM':>6} {'annotate':>9}"]
    for s in prm_report.subsets:
        other = by_name.get(s.name)
        fmt = (lambda x: f"{x:.3f}" if x is not None else "-")
        lines.append(f"{s.name:<22} {fmt(s.f1):>6} {fmt(other.f1 if other else None):>9}")
    return "\n".join(lines)


def run(args) -> int:
    import yaml

    from apsgen.cli.errors import UserError
    from apsgen.config import parse_spec
    from apsgen.eval.processbench import ProcessBenchError, evaluate

    for flag, value in (("--limit", args.limit), ("--sample", args.sample)):
        if value is not None and value < 1:
            raise UserError(f"{flag} {value}: expected a positive number of items")
    if args.limit is not None and args.sample is not None:
        raise UserError("give --limit or --sample, not both")
    if args.concurrency < 1:
        raise UserError(f"--concurrency {args.concurrency}: expected at least 1")
    if args.max_length is not None and args.max_length < 1:
        raise UserError(f"--max-length {args.max_length}: expected a positive number of tokens")
    threshold = _threshold(args.threshold)
    sources = _answer_sources(args)
    raw: dict = {}
    if args.job:
        with open(args.job) as f:
            raw = yaml.safe_load(f) or {}
        if not isinstance(raw, dict):
            raise UserError(f"job spec {args.job!r}: expected a mapping at the top level")
    raw.setdefault("name", "processbench")
    raw["dataset"] = {"path": "processbench", "steps_column": "steps"}  # the items are the dataset
    raw.setdefault("search", {})["mode"] = "annotate"
    if args.coverage:
        from apsgen.eval.processbench import coverage_table

        try:
            print(coverage_table(args.files, sources, args.limit, args.sample, args.sample_seed))
        except ProcessBenchError as e:
            raise UserError(str(e)) from None
        return 0
    try:
        prm_report = None
        if args.prm:
            from apsgen.eval.prm import evaluate_prm
            from apsgen.prm.score import PRMError

            try:
                prm_report = evaluate_prm(
                    args.files, args.prm, threshold=threshold, limit=args.limit, sample=args.sample,
                    sample_seed=args.sample_seed, separator=args.separator,
                    max_length=args.max_length, trust_remote_code=args.trust_remote_code, device=args.device)
            except PRMError as e:
                raise UserError(str(e)) from None
        policy_given = bool(args.job and "policy" in raw) or any(o.startswith("policy.") for o in args.overrides)
        simulated = not policy_given and _all_simulated(args.files)
        report = None
        if prm_report is None or (not args.prm_only and (policy_given or simulated)):
            if simulated:
                raw["policy"] = {"backend": "simulated"}
                print("policy: simulated (every item is a simulated-policy question; "
                      "pass --job or --set policy.backend=... for a model)", file=sys.stderr)
            spec = parse_spec(raw, args.job or "eval settings", args.overrides)
            report = evaluate(args.files, spec, concurrency=args.concurrency, limit=args.limit, sample=args.sample,
                              sample_seed=args.sample_seed,
                              answers=sources, allow_partial=args.allow_partial)
        elif not args.prm_only:
            print("annotate: not run (no policy given; pass --job or --set policy.model=... to compare)",
                  file=sys.stderr)
    except ProcessBenchError as e:
        raise UserError(str(e)) from None
    if args.json:
        out = report.as_json() if report is not None else {}
        if prm_report is not None:
            out = {"prm": prm_report.as_json(), "annotate": out or None}
        print(json.dumps(out, sort_keys=True))
        return 0
    parts = [r.render() for r in (prm_report, report) if r is not None]
    if prm_report is not None and report is not None:
        parts.append(_side_by_side(prm_report, report))
    print("\n\n".join(parts))
    return 0
