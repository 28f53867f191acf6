"""`apsgen nightly JOB.yaml [--date YYYY-MM-DD] [--no-push]`: tonight's incremental build (see apsgen.nightly)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("nightly", help="incremental dated build: search only new problems, refresh the combined view, push")
    p.add_argument("job", help="job spec YAML")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec value (repeatable)")
    p.add_argument("--output", help="the job's output root (default: out/<job name>)")
    p.add_argument("--date", help="build date YYYY-MM-DD (default: today, UTC)")
    p.add_argument("--no-push", action="store_true", help="build locally even when the job has hub.repo_id")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from apsgen.cli.errors import UserError
    from apsgen.config import load_spec
    from apsgen.hub.push import HubError
    from apsgen.nightly import NightlyError, run_nightly

    spec = load_spec(args.job, args.overrides)
    try:
        result = run_nightly(spec, output=args.output, date=args.date, push=not args.no_push,
                             show_progress=not args.no_progress, verbose=args.verbose)
    except (NightlyError, HubError) as e:
        raise UserError(str(e)) from None
    print(result.render())
    return 1 if result.summary.failed else 0
