"""`apsgen status OUT_DIR`: progress of a job's output, read from its shards and manifest.
`apsgen status --job-id ID`: a submitted job's state on the cluster, and its output's progress."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("status", help="done/total, failures and rates of a job's output (or a submitted job)")
    p.add_argument("output", nargs="?", help="the job's output folder or URI")
    p.add_argument("--job-id", help="a submission id from `apsgen submit`: its state on the cluster")
    p.add_argument("--address", help="with --job-id: the head's dashboard URL (default: RAY_API_SERVER_ADDRESS)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def output_status(uri: str) -> dict:
    from apsgen.io.store import OutputStore

    store = OutputStore(uri)
    manifest = store.read_manifest()
    if manifest is None:
        raise FileNotFoundError(f"no apsgen output at {uri} (manifest.json missing)")
    problems = store.read_problems()
    status = problems.column("status").to_pylist()
    reasons = [r for r in problems.column("skip_reason").to_pylist() if r]
    seconds = sum(problems.column("elapsed_s").to_pylist())
    rollouts = sum(problems.column("n_rollouts").to_pylist())
    tokens = sum(problems.column("generated_tokens").to_pylist())
    last = manifest.runs[-1] if manifest.runs else {}
    wall = last.get("wall_s") or 0.0
    return {
        "job": manifest.job,
        "fingerprint": manifest.fingerprint,
        "done": len(status),
        "total": manifest.total_problems,
        "searched": status.count("searched"),
        "skipped": {r: reasons.count(r) for r in sorted(set(reasons))},
        "failed": manifest.failed,
        "rollouts": rollouts,
        "generated_tokens": tokens,
        "search_seconds": round(seconds, 1),
        "last_run_wall_s": round(wall, 1),
        "last_run_tokens_per_s": round(last.get("generated_tokens", 0) / wall, 1) if wall else None,
        "updated_at": manifest.updated_at,
        "calibration": _calibration(store),
    }


def _calibration(store) -> dict | None:
    """The output's calibration.json, if any (its whole content, for --json)."""
    import json as _json

    from apsgen.label.calibration import FILE

    raw = store.read_bytes(FILE)
    return _json.loads(raw.decode()) if raw is not None else None


def run(args) -> int:
    if args.job_id:
        return _job_status(args)
    if not args.output:
        from apsgen.cli.errors import UserError

        raise UserError("give an output folder or URI, or --job-id ID for a submitted job")
    s = output_status(args.output)
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    _print_output_status(s)
    return 0


def _job_status(args) -> int:
    from apsgen.cluster.jobs import job_info

    info = job_info(args.job_id, args.address)
    uri = args.output or info["metadata"].get("apsgen_output") or None
    out = None
    if uri:
        try:
            out = output_status(uri)
        except Exception as e:  # not written yet, or storage this machine cannot read
            out = {"unavailable": f"{type(e).__name__}: {e}"}
    if args.json:
        print(json.dumps({**info, "output": uri, "output_status": out}, indent=2))
        return 0
    print(f"job {info['submission_id']} on {info['address']}: {info['status']}"
          + (f" ({info['message']})" if info["message"] else ""))
    print(f"  started {info['start_time'] or '-'}, ended {info['end_time'] or '-'}")
    print(f"  entrypoint: {info['entrypoint']}")
    if out is None:
        print("  output: not recorded at submission (pass OUT_DIR to read it)")
    elif "unavailable" in out:
        print(f"  output {uri}: {out['unavailable']}")
    else:
        print(f"  output {uri}:")
        _print_output_status(out)
    return 0


def _print_output_status(s: dict) -> None:
    print(f"job {s['job']} (fingerprint {s['fingerprint']}): {s['done']}/{s['total']} problems done")
    print(f"  searched {s['searched']}, skipped {sum(s['skipped'].values())} {s['skipped'] or ''}, failed {len(s['failed'])}")
    print(f"  {s['rollouts']} rollouts, {s['generated_tokens']} generated tokens")
    if s["last_run_tokens_per_s"] is not None:
        print(f"  last run: {s['last_run_wall_s']}s wall, {s['last_run_tokens_per_s']} generated tokens/s")
    cal = s.get("calibration")
    if cal is not None:
        from apsgen.label.calibration import Calibration

        c = Calibration.from_json(json.dumps(cal))
        cost = c.cost or {}
        print(f"  calibration: {c.render()}")
        if cost.get("questions"):
            print(f"    cost {cost.get('rollouts', 0)} rollouts, {cost.get('wall_s', 0)}s wall, "
                  f"{100 * cost.get('idle_share', 0):.0f}% of {cost.get('slots', '?')} search slots idle meanwhile")
    for pid, err in list(s["failed"].items())[:10]:
        print(f"  failed {pid}: {err.splitlines()[-1][:200]}")
