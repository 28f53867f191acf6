"""`apsgen stats OUT_DIR [--html report.html] [--json]`: dataset statistics and an HTML report."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("stats", help="counts, label balance, MC histogram, costs and verifier outcomes of an output")
    p.add_argument("output_dir", metavar="OUT_DIR", help="the job's output folder or URI")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report with plots and a tree viewer")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from apsgen.cli.errors import UserError
    from apsgen.io.stats import StatsError, compute_stats

    from apsgen.audit.report import attach_audit
    from apsgen.audit.sample import AuditError

    try:
        stats = attach_audit(compute_stats(args.output_dir), args.output_dir)
    except (StatsError, AuditError) as e:
        raise UserError(str(e)) from None
    print(json.dumps(stats.to_dict(), indent=2) if args.json else stats.render())
    if args.html:
        from apsgen.io.report import write_report

        write_report(args.output_dir, args.html, stats=stats)
        if not args.json:
            print(f"wrote {args.html}")
    return 0
