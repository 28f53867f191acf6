"""`apsgen stop ID`: stop a submitted job; its driver commits what it finished, so a later
`apsgen submit` of the same job resumes."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("stop", help="stop a submitted job")
    p.add_argument("job_id", help="the submission id `apsgen submit` printed")
    p.add_argument("--address", help="the head's dashboard URL (default: RAY_API_SERVER_ADDRESS)")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for it to end (default 60)")
    p.set_defaults(func=run)


def run(args) -> int:
    from apsgen.cluster.jobs import TERMINAL, stop

    sid, status = stop(args.job_id, args.address, wait_s=args.wait)
    print(f"{sid}: {status.lower()}")
    return 0 if status in TERMINAL else 1
