"""`apsgen regrade OUT_DIR [--json] [--show N]`: grade an output's kept rollouts again with the
current verifier and report what would change (outcomes, evidence, verdicts); nothing is written."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("regrade", help="re-check a job output's kept rollouts (runner.keep_rollouts) with the "
                       "current verifier; report the outcomes, evidence and verdicts that would change")
    p.add_argument("output_dir", metavar="OUT_DIR", help="the job's output folder or URI")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a verify setting to grade with instead of the job's, e.g. --set last_number_fallback=true")
    p.add_argument("--show", type=int, default=5, help="changed verdicts and rollouts to list (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:  # type: ignore[no-untyped-def]
    import yaml
    from pydantic import ValidationError

    from apsgen.cli.errors import UserError
    from apsgen.config import VerifySpec
    from apsgen.io.store import OutputStore
    from apsgen.regrade import RegradeError, regrade, report_json

    manifest = OutputStore(args.output_dir).read_manifest()
    if manifest is None:
        raise UserError(f"no apsgen output at {args.output_dir} (manifest.json missing); pass the folder `apsgen run` wrote")
    settings = dict(manifest.spec.get("verify") or {})
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. --set timeout_s=5")
        settings[key.strip()] = yaml.safe_load(value)
    try:
        verify = VerifySpec.model_validate(settings)
    except ValidationError as e:
        raise UserError(f"--set: not a verify setting: {e.errors()[0]['loc']} = {e.errors()[0].get('input')!r}: "
                        f"{e.errors()[0]['msg']}") from None
    if args.show < 0:
        raise UserError(f"--show {args.show} must be 0 or more")
    try:
        report = regrade(args.output_dir, verify, examples=max(args.show, 20))
    except RegradeError as e:
        raise UserError(str(e)) from None
    print(report_json(report) if args.json else report.render(args.show))
    return 0
