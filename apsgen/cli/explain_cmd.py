"""`apsgen explain OUT_DIR PROBLEM_ID [--node N]`: the chain that labelled a step, from the output
alone; `apsgen explain OUT_DIR --verify`: recompute every stored label and say whether each is the
same (exit 1 on any mismatch)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any


def register(sub) -> None:
    p = sub.add_parser("explain", help="why a stored step has its label (text check, evidence, test, decision), "
                       "or --verify: recompute every stored label")
    p.add_argument("output", help="the job's output folder or URI")
    p.add_argument("problem_id", nargs="?", help="the problem to explain (every state of its tree, or --node)")
    p.add_argument("--node", type=int, help="one state of the problem's tree (its node_id)")
    p.add_argument("--verify", action="store_true",
                   help="recompute every stored label (of PROBLEM_ID, or of the whole output); exit 1 on a mismatch")
    p.add_argument("--json", action="store_true", help="with --verify: one JSON object")
    p.set_defaults(func=run)


def _load(uri: str) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]], Any]:
    from apsgen.io.store import OutputStore
    from apsgen.label.calibration import FILE, Calibration

    store = OutputStore(uri)
    if store.read_manifest() is None:
        raise FileNotFoundError(f"no apsgen output at {uri} (manifest.json missing)")
    problems = {r["problem_id"]: r for r in store.read_problems().to_pylist()}
    steps: dict[str, list[dict[str, Any]]] = {}
    for row in store.read_steps().to_pylist():
        steps.setdefault(row["problem_id"], []).append(row)
    raw = store.read_bytes(FILE)
    return problems, steps, Calibration.from_json(raw.decode()) if raw else None


def run(args) -> int:  # type: ignore[no-untyped-def]
    from apsgen.cli.errors import UserError
    from apsgen.label.replay import ProblemReplay, ReplayError

    problems, steps, calibration = _load(args.output)
    if args.problem_id is not None and args.problem_id not in problems:
        close = [p for p in problems if p.startswith(args.problem_id[:4])][:5]
        raise UserError(f"no problem {args.problem_id!r} in {args.output}"
                        + (f"; ids starting alike: {', '.join(close)}" if close else f" ({len(problems)} problems)"))
    chosen = [args.problem_id] if args.problem_id is not None else list(problems)
    if not args.verify:
        if args.problem_id is None:
            raise UserError("name a problem (apsgen explain OUT PROBLEM_ID [--node N]) or pass --verify")
        problem = problems[args.problem_id]
        try:
            replay = ProblemReplay(problem, steps.get(args.problem_id, []), calibration)
        except ReplayError as e:
            raise UserError(str(e)) from None
        print(f"problem {args.problem_id}: {' '.join(problem['question'].split())[:200]}")
        print(f"gold answer {problem['gold_answer']}; {problem['status']}"
              f"{' (' + problem['skip_reason'] + ')' if problem.get('skip_reason') else ''}; rule {replay.name or 'none'}")
        if replay.own is not None and replay.own.probes:
            g = replay.own.probes
            print(f"own recovery: {len(g)} probes, {sum(p.successes for p in g)} of {sum(p.graded for p in g)} graded "
                  f"rollouts right at prefixes wrong by " + ", ".join(sorted({p.because for p in g})))
            for p in g:
                if p.planted:
                    print(f"  planted: {' '.join(p.planted.split())[:160]!r} ({p.successes} of {p.graded} right)")
        print(replay.replay_allgood()[1][0])
        nodes = [args.node] if args.node is not None else sorted(replay.steps)
        try:
            for node in nodes:
                print(replay.explain(node))
        except ReplayError as e:
            raise UserError(str(e)) from None
        return 0
    counts: Counter[str] = Counter()
    mismatches: list[str] = []
    for pid in chosen:
        rows = steps.get(pid, [])
        if not rows:
            continue
        try:
            replay = ProblemReplay(problems[pid], rows, calibration)
        except ReplayError as e:
            mismatches.append(f"{pid}: {e}")
            continue
        ok, why = replay.replay_allgood()
        counts["all-good decision"] += 1
        if not ok:
            mismatches.append(f"{pid}: all-good paths: {why[0]}")
        for node in sorted(replay.steps):
            r = replay.replay(node)
            counts[r.stored.basis] += 1
            if not r.matches:
                mismatches.append(f"{pid} node {node}: stored {r.stored.verdict} ({r.stored.basis}, score "
                                  f"{r.stored.score}), recomputed {r.replayed.verdict} ({r.replayed.basis}, score "
                                  f"{r.replayed.score})")
            reflection = replay.replay_reflection(node)
            if reflection is not None:
                counts["reflection"] += 1
                if not reflection.matches:
                    mismatches.append(f"{pid} node {node}: reflection stored {reflection.stored.verdict}, recomputed "
                                      f"{reflection.replayed.verdict}")
    total = sum(counts.values())
    if args.json:
        print(json.dumps({"labels": total, "by_basis": dict(counts), "mismatches": len(mismatches),
                          "examples": mismatches[:20]}, sort_keys=True))
    else:
        by = ", ".join(f"{k} {v}" for k, v in counts.most_common())
        print(f"{total} stored labels of {len(chosen)} problem(s) recomputed from the output ({by}): "
              + ("every one the same" if not mismatches else f"{len(mismatches)} differ"))
        for line in mismatches[:20]:
            print(f"  {line}", file=sys.stderr)
    return 1 if mismatches else 0
