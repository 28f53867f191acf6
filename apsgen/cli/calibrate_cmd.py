"""`apsgen calibrate JOB.yaml`: measure a job's calibration alone (`apsgen run --calibrate-only`).

The job's output then holds `calibration.json`, which `apsgen status` prints and a later
`apsgen run` of the same job reuses: inspect what the policy's recovery looks like before paying
for the whole job.
"""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="measure a job's calibration only (see apsgen run --calibrate-only)")
    p.add_argument("job", help="job spec YAML, e.g. jobs/demo.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec value, e.g. --set search.k=4 (repeatable)")
    p.add_argument("--output", help="output folder or URI (default: out/<job name>)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from apsgen.cli import run_cmd

    args.new_version = False
    args.no_progress = True
    args.dry_run = False
    args.calibrate_only = True
    return run_cmd.run(args)
