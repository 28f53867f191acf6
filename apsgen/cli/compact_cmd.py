"""`apsgen compact OUT_DIR [--target-mb N]`: merge a job output's small shards in place."""

from __future__ import annotations


def register(sub) -> None:
    from apsgen.io.compact import FILE_BYTES

    p = sub.add_parser("compact", help="merge a job output's many small shards into few large ones, in place")
    p.add_argument("output_dir", metavar="OUT_DIR", help="the job's output folder or URI (no job may be writing to it)")
    p.add_argument("--target-mb", type=int, default=FILE_BYTES // 2**20,
                   help=f"uncompressed step data per merged shard, in MiB (default {FILE_BYTES // 2**20})")
    p.set_defaults(func=run)


def run(args) -> int:
    from apsgen.cli.errors import UserError
    from apsgen.io.compact import compact_output
    from apsgen.io.store import OutputStore
    from apsgen.nightly import read_ledger

    if args.target_mb <= 0:
        raise UserError(f"--target-mb {args.target_mb} must be a positive number of MiB, e.g. 512")
    store = OutputStore(args.output_dir)
    if store.read_manifest() is None:
        raise UserError(f"no apsgen output at {args.output_dir} (manifest.json missing); pass the folder `apsgen run` wrote")
    # Each nightly build's parts stay apart, so a build can still be told from the others.
    boundaries = [b.first_part for b in read_ledger(store)]
    report = compact_output(args.output_dir, target_bytes=args.target_mb * 2**20, boundaries=boundaries)
    print(report.render())
    return 0
