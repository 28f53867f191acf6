"""`apsgen submit JOB.yaml --address http://HEAD:8265`: run a job on a Ray cluster (Jobs API)."""

from __future__ import annotations

import os


def register(sub) -> None:
    p = sub.add_parser("submit", help="submit a job to a Ray cluster (resumes when submitted again)")
    p.add_argument("job", help="job spec YAML inside the working directory, e.g. jobs/demo.yaml")
    p.add_argument("--address", help="the head's dashboard URL, e.g. http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec value, e.g. --set search.k=4 (repeatable)")
    p.add_argument("--output", help="output URI on shared storage, e.g. s3://bucket/apsgen/demo")
    p.add_argument("--nightly", action="store_true", help="submit `apsgen nightly JOB.yaml` instead of `apsgen run`")
    p.add_argument("--new-version", action="store_true", help="passed to `apsgen run`: the spec changed on purpose")
    p.add_argument("--working-dir", default=".", help="folder uploaded as the job's working directory (default: .)")
    p.add_argument("--extras", default="vllm",
                   help="apsgen extras pip-installs on the cluster, comma-separated; '' for none (default: vllm)")
    p.add_argument("--submission-id", help="override the id (default <job>-<YYYYMMDD>, stable for resubmission)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="environment for the job (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the entrypoint and runtime_env, submit nothing")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import logging

    from apsgen.cli.errors import UserError
    from apsgen.cluster.jobs import Submission, submission_id, submit
    from apsgen.config import load_spec

    if not args.verbose:  # Ray's packaging chatter; its warnings stay
        logging.getLogger("ray").setLevel(logging.WARNING)
        logging.getLogger("ray._private.runtime_env").setLevel(logging.ERROR)
    spec = load_spec(args.job, args.overrides)  # fail here, not on the cluster
    env_vars = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UserError(f"--env {item!r}: expected NAME=VALUE")
        env_vars[name] = value
    sub = Submission(
        job_file=args.job,
        job_name=spec.name,
        working_dir=args.working_dir,
        overrides=args.overrides,
        output=args.output,
        nightly=args.nightly,
        new_version=args.new_version,
        verbose=args.verbose,
        extras=[e.strip() for e in args.extras.split(",") if e.strip()],
        env_vars=env_vars,
        spec_output=spec.output,
    )
    output = args.output or spec.output
    if not output or "://" not in output:
        logging.getLogger("apsgen").warning(
            "output %r is a local path on the head node; pass --output s3://... or gs://... so workers and you "
            "can read it", output or spec.output_dir()
        )
    if args.dry_run:
        sid = args.submission_id or submission_id(spec.name, nightly=args.nightly)
        print(json.dumps({"submission_id": sid, "entrypoint": sub.entrypoint(), "runtime_env": sub.runtime_env()}, indent=2))
        return 0
    sid = submit(sub, args.address, submission=args.submission_id)
    address = args.address or os.environ.get("RAY_API_SERVER_ADDRESS") or os.environ.get("RAY_ADDRESS")
    print(f"submitted {sid} to {address}")
    print(f"  follow:  apsgen logs {sid} --follow")
    print(f"  status:  apsgen status --job-id {sid}")
    print(f"  stop:    apsgen stop {sid}")
    return 0
