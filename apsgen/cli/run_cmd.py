"""`apsgen run JOB.yaml [--set k=v ...] [--output DIR]`: run or resume a job here (embedded Ray,
or the cluster RAY_ADDRESS names)."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("run", help="run (or resume) a job")
    p.add_argument("job", help="job spec YAML, e.g. jobs/demo.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec value, e.g. --set search.k=4 (repeatable)")
    p.add_argument("--output", help="output folder or URI (default: out/<job name>)")
    p.add_argument("--new-version", action="store_true",
                   help="the spec changed: write beside the old output instead of refusing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--dry-run", action="store_true", help="validate the spec, load the problems, and stop")
    p.add_argument("--calibrate-only", action="store_true",
                   help="measure the job's calibration (written to the output as calibration.json), print it, and stop")
    p.set_defaults(func=run)


def run(args) -> int:
    from apsgen.config import load_spec

    spec = load_spec(args.job, args.overrides)
    if args.dry_run:
        from apsgen.runner.driver import job_problems

        report = job_problems(spec)
        print(f"job {spec.name}: {report.summary()}; output {args.output or spec.output_dir()}")
        return 0
    from apsgen.runner.driver import run_job

    summary = run_job(
        spec,
        output=args.output,
        verbose=args.verbose,
        new_version=args.new_version,
        show_progress=not args.no_progress,
        calibrate_only=args.calibrate_only,
    )
    if args.json:
        # Leave Ray first: it can still print (a node it lost, say) to stdout, after the JSON.
        import ray

        if ray.is_initialized():
            ray.shutdown()
    if args.calibrate_only:
        from apsgen.label.calibration import FILE

        path = "/".join([summary.output.rstrip("/"), FILE])
        if args.json:
            print(json.dumps({"output": summary.output, "calibration": summary.calibration, "file": path}))
        else:
            print(f"job {summary.job}: {summary.output}\n  calibration   {summary.calibration or 'none (the label rule needs none)'}"
                  f"\n  written to    {path}")
        return 0
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary.render())
    return 1 if summary.failed else 0
