"""`apsgen logs ID`: a submitted job's driver log (progress, summary, errors)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("logs", help="print a submitted job's log")
    p.add_argument("job_id", help="the submission id `apsgen submit` printed")
    p.add_argument("--address", help="the head's dashboard URL (default: RAY_API_SERVER_ADDRESS)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until the job ends")
    p.set_defaults(func=run)


def run(args) -> int:
    from apsgen.cluster.jobs import logs

    logs(args.job_id, args.address, follow=args.follow)
    return 0
