"""`apsgen audit OUT_DIR`: read a seeded sample of the labels by hand; `--report` gives the precision."""

from __future__ import annotations

import getpass
import json
import os
import re
import sys

from apsgen.audit.sample import DEFAULT_CORRECT_SHARE, DEFAULT_SIZE


def register(sub) -> None:
    p = sub.add_parser(
        "audit",
        help="spot-check labels by reading them: a seeded sample of located first errors and all-correct paths",
        description="Show a seeded, stratified sample of the output's labelled paths one by one and record "
        "whether each label is right (one key: r right, e an earlier step is wrong, f the labelled step is fine, "
        "s skip, q quit). Answers are kept in OUT_DIR/audit/<auditor>.jsonl; running again continues the sample. "
        "Over a pipe each answer is a line ('e 2' names step 2).",
    )
    p.add_argument("output_dir", metavar="OUT_DIR", help="the job's output folder or URI")
    p.add_argument("--auditor", default=None,
                   help="whose verdicts these are (default $APSGEN_AUDITOR, else the login name)")
    p.add_argument("--sample", type=int, default=DEFAULT_SIZE, metavar="N",
                   help=f"paths in the sample (default {DEFAULT_SIZE}; a larger N keeps every path a smaller one drew)")
    p.add_argument("--seed", type=int, default=0, help="sample seed (default 0; two auditors with one seed read the same paths)")
    p.add_argument("--correct-share", type=float, default=DEFAULT_CORRECT_SHARE, metavar="F",
                   help=f"share of the sample that is all-correct paths (default {DEFAULT_CORRECT_SHARE})")
    p.add_argument("--report", action="store_true", help="print the audited precision instead of auditing")
    p.add_argument("--json", action="store_true", help="with --report: as JSON")
    p.add_argument("--export", metavar="FILE", help="write the sample (with your answers so far) to FILE (.csv, else JSON lines)")
    p.add_argument("--import", dest="import_file", metavar="FILE",
                   help="record the answers of FILE (a filled-in --export) as the auditor's")
    p.set_defaults(func=run)


def default_auditor() -> str:
    name = os.environ.get("APSGEN_AUDITOR")
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "auditor"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "auditor"


def run(args) -> int:
    from apsgen.audit.record import AuditLog, check_auditor, latest, read_import, write_export
    from apsgen.audit.report import build_report
    from apsgen.audit.sample import AuditError, draw_sample
    from apsgen.audit.session import run_session
    from apsgen.cli.errors import UserError

    try:
        if args.report:
            report = build_report(args.output_dir)
            if report is None:
                raise AuditError(f"{args.output_dir} has not been audited yet: run `apsgen audit {args.output_dir}`")
            print(json.dumps(report.to_dict(), indent=2) if args.json else report.render())
            return 0
        auditor = check_auditor(args.auditor or default_auditor())
        sample = draw_sample(args.output_dir, size=args.sample, seed=args.seed, correct_share=args.correct_share)
        log = AuditLog(args.output_dir)
        mine = log.read(auditor)
        earlier = {v.output_digest for v in mine} - {sample.digest}
        if earlier:
            print(f"note: {auditor} has verdicts on an earlier state of this output (digest {', '.join(sorted(earlier))}); "
                  f"they are kept and not mixed in: this audit reads the output as it is now (digest {sample.digest})",
                  file=sys.stderr)
        pop = sample.population
        print(f"sample of {len(sample.items)} paths (seed {sample.seed}) from {pop['first_error']} located first errors "
              f"and {pop['all_correct']} all-correct paths; output digest {sample.digest}; auditor {auditor}")
        if args.export:
            answered = {pid: v for (_, pid), v in latest(v for v in mine if v.output_digest == sample.digest).items()}
            n = write_export(args.export, sample, answered)
            print(f"wrote {n} paths to {args.export}: fill in answer (right / earlier / fine / skip) and, "
                  f"with earlier, wrong_step; then `apsgen audit {args.output_dir} --import {args.export}`")
            return 0
        if args.import_file:
            verdicts, unanswered = read_import(args.import_file, sample, auditor)
            log.append(verdicts)
            print(f"recorded {len(verdicts)} verdicts from {args.import_file} as {auditor} ({unanswered} rows without an answer)")
            return 0
        result = run_session(sample, log, auditor)
        if result.quit:
            print(f"\nstopped: {result.answered} answered now, {result.remaining} of the sample left; "
                  f"run the same command to continue")
        else:
            print(f"\nthe sample is read ({result.answered} answered now)")
        report = build_report(args.output_dir)
        if report is not None:
            print(report.render())
        return 0
    except AuditError as e:
        raise UserError(str(e)) from None
