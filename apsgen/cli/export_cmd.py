"""`apsgen export OUT_DIR --format F [--threshold T] [--output DIR] [--jsonl] [--no-correct-paths] [--consensus] [--convention C]`."""

from __future__ import annotations


def register(sub) -> None:
    from apsgen.io.export import DEFAULT_THRESHOLD, FORMATS

    p = sub.add_parser("export", help="write a job's output as MATH-APS / Math-Shepherd / stepwise / Qwen PRM data")
    p.add_argument("output_dir", metavar="OUT_DIR", help="the job's output folder or URI")
    p.add_argument("--format", dest="formats", action="append", required=True, metavar="F",
                   help=f"one of {', '.join(FORMATS)} (trl: stepwise), a comma list, or all (repeatable)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="relabel from MC: a step is good when its MC value > this (0.5: MATH-APS; 0: any correct "
                        "rollout). Default: the label rule's stored verdict")
    p.add_argument("--output", help="destination folder; each format goes to DIR/<format>/ (default OUT_DIR/exports)")
    p.add_argument("--jsonl", action="store_true", help="also write JSON Lines beside each Parquet file")
    p.add_argument("--no-correct-paths", dest="correct_paths", action="store_false",
                   help="leave out the correct sampled solutions (exported as all-good paths by default)")
    p.add_argument("--consensus", action="store_true",
                   help="keep only the paths the job's LLM judge agreed with (needs a job run with `judge:`)")
    p.add_argument("--convention", choices=("first_error", "corrected"), default="first_error",
                   help="what follows a first error on a path: first_error (the path ends there; OmegaPRM, PURE) or "
                        "corrected (a reasoning trace's reflection that put it back on track keeps the span it corrected, "
                        "labelled -, and itself + with the rest of a right-answer trace; see docs/reasoning.md)")
    p.set_defaults(func=run)


def run(args) -> int:
    from apsgen.cli.errors import UserError
    from apsgen.io.export import ExportError, export

    try:
        report = export(args.output_dir, args.formats, args.output, threshold=args.threshold, jsonl=args.jsonl,
                        correct_paths=args.correct_paths, consensus=args.consensus,
                        convention=args.convention)
    except ExportError as e:
        raise UserError(str(e)) from None
    print(report.render())
    return 0
