"""`apsgen bench prm`: do better labels train a better PRM? Labels for the same simulated questions
from each label rule (the default sequential rule, the paper's, per-step MC), the same small PRM
trained on each (`apsgen.prm.train`, the demo model as base), each scored on held-out
ProcessBench-format items drawn from the same world (first-error F1 as ProcessBench computes it).

The figure is a 135M-parameter model trained for minutes on simulated text: it says whether one
rule's labels carry more of the truth than another's where everything else is equal, not what a
real PRM gains. The same comparison with a real base model, a real policy and real ProcessBench
files is the GPU recipe in docs/training.md.

Per seed: the world's questions are labelled by each rule as a job labels them (calibration first,
`apsgen.pipeline.label_locally`), written as step rows and exported as `stepwise` (the hard
verdicts, all-good paths included, exactly as `apsgen export` writes them); each export trains a
PRM with the same settings and seed; the held-out items (fresh questions, one sampled solution
each, half with a planted first error, half flawless, the truth from the world) are split in two:
the threshold is fitted on the first half (`eval processbench --threshold auto`) and F1 is reported
on the second, with F1 at 0.5 beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from apsgen.bench.search import BASELINE, SUCCESS, make_world, rule_spec
from apsgen.config import StepsSpec
from apsgen.pipeline import Labeller, label_locally
from apsgen.policy.base import Sampling
from apsgen.problem import Problem

log = logging.getLogger(__name__)

RULES = ("sequential", "paper", BASELINE)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world", default="silent", help="simulated world: chain, story, quiet or silent (default silent)")
    parser.add_argument("--recover", type=float, default=0.1, help="the world's recovery rate (default 0.1)")
    parser.add_argument("--success", default="high", choices=("low", "high"), help="solve-rate range (default high)")
    parser.add_argument("--rules", default=",".join(RULES), help=f"label rules to compare (default {','.join(RULES)})")
    parser.add_argument("--seeds", default="2,3,4", help="world, labelling and training seeds (default 2,3,4)")
    parser.add_argument("--problems", type=int, default=60, help="questions labelled per seed (default 60)")
    parser.add_argument("--items", type=int, default=120,
                        help="held-out items per seed, half erroneous (default 120: 60 fit the threshold, 60 score)")
    parser.add_argument("--k", type=int, default=8, help="rollouts per estimate (default 8)")
    parser.add_argument("--model", default="smollm2-135m", help="the PRM's base model (default the demo model)")
    parser.add_argument("--train-steps", type=int, default=60, help="optimizer steps per PRM (default 60)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=384, help="tokens per training row (default 384)")
    parser.add_argument("--keep", default=None, help="keep the exports and PRMs in this folder (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of tables")


def _labels(world: Any, rule: str, problems: list[Problem], seed: int, k: int) -> list[Any]:
    """Each question's result under `rule`, labelled as a job labels it."""
    from apsgen.verify import Verifier

    ns = argparse.Namespace(max_searches=100, screen_samples=32, overrides=[])
    with Verifier() as verifier:
        labeller = Labeller(world.policy(seed), verifier, Sampling(max_tokens=1024), seed)
        run = asyncio.run(label_locally(problems, labeller, rule_spec(rule, k, ns)))
    return run.results


def _export(problems: list[Problem], results: list[Any], rule: str, dest: Path) -> dict[str, int]:
    """The results as step rows, exported as `stepwise` into dest/stepwise (what `apsgen export`
    writes); rows and steps labelled."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from apsgen import __version__
    from apsgen.io.export import export_rows
    from apsgen.io.export.formats import get_format
    from apsgen.io.rows import Provenance, now, step_rows
    from apsgen.io.schema import step_schema

    prov = Provenance(policy_model="simulated", policy_revision=None, prompt_template_hash="", sampling="{}",
                      search_params=json.dumps({"rule": rule}), verifier="apsgen.verify", apsgen_version=__version__,
                      job_fingerprint=f"bench-prm-{rule}")
    created = now()
    rows = [r for p, res in zip(problems, results, strict=True) if res is not None
            for r in step_rows(p, res, prov, created)]
    table = pa.Table.from_pylist(rows, schema=step_schema())
    out = export_rows(get_format("stepwise"), table, None)
    (dest / "stepwise").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(out), dest / "stepwise" / "part-00000.parquet")
    labels = [x for r in out for x in r["labels"]]
    return {"rows": len(out), "steps": len(labels), "positive": sum(labels)}


def held_out_items(world: Any, n: int, seed: int, exclude: set[str]) -> list[dict[str, Any]]:
    """`n` ProcessBench-format items from fresh questions of the world: one sampled solution each,
    half with a first error (its step from the world's truth), half flawless and ending right."""
    from apsgen.verify import Verifier

    delimiter = re.compile(StepsSpec().delimiter)
    policy = world.policy(seed + 7919)
    want = {True: n // 2, False: n - n // 2}
    items: list[dict[str, Any]] = []
    questions = [p for p in world.problems(20 * n, seed + 7919) if p.question not in exclude]
    with Verifier() as verifier:
        for i, p in enumerate(questions):
            if not any(want.values()):
                break
            gen = asyncio.run(policy.generate(p.question, "", 1, Sampling(max_tokens=1024, seed=seed * 100003 + i)))
            sample = gen.samples[0]
            if sample.truncated or not sample.text.strip():
                continue
            offset = world.first_error_offset(p.question, sample.text)
            erroneous = offset is not None
            right = verifier.check_batch([sample.text], p.answer)[0].outcome == "correct"
            if not want[erroneous] or (not erroneous and not right):
                continue
            steps, label, start = [], -1, 0
            for m in [*delimiter.finditer(sample.text), None]:
                end = m.start() if m is not None else len(sample.text)
                if sample.text[start:end].strip():
                    if erroneous and label == -1 and offset < (m.end() if m is not None else len(sample.text) + 1):
                        label = len(steps)
                    steps.append(sample.text[start:end].strip())
                start = m.end() if m is not None else start
            if erroneous and label == -1:
                continue
            want[erroneous] -= 1
            items.append({"id": f"{world.name}-{seed}-{i}", "generator": f"simulated {world.name}", "problem": p.question,
                          "steps": steps, "label": label, "final_answer_correct": right})
    return items


def _write(items: list[dict[str, Any]], path: Path) -> str:
    path.write_text(json.dumps(items))
    return str(path)


def run_seed(seed: int, rules: list[str], args: argparse.Namespace, root: Path) -> list[dict[str, Any]]:
    from apsgen.eval.processbench import load_items
    from apsgen.eval.prm import fit_threshold, score_items, subset_score
    from apsgen.prm.score import load_prm, trained_separator
    from apsgen.prm.train import TrainSettings, train_prm

    world = make_world(args.world, args.recover, SUCCESS[0 if args.success == "low" else 1], 0.05)
    problems = world.problems(args.problems, seed)
    items = held_out_items(world, args.items, seed, {p.question for p in problems})
    # The two halves alike: half the erroneous and half the flawless items in each.
    bad = [x for x in items if x["label"] != -1]
    good = [x for x in items if x["label"] == -1]
    dev = bad[: len(bad) // 2] + good[: len(good) // 2]
    test = bad[len(bad) // 2:] + good[len(good) // 2:]
    # Written as ProcessBench files and read back as `apsgen eval processbench` reads them.
    dev_items = load_items(_write(dev, root / f"seed{seed}-dev.json"), strict=True)[0]
    test_items = load_items(_write(test, root / f"seed{seed}-test.json"), strict=True)[0]
    out = []
    for rule in rules:
        t0 = time.perf_counter()
        results = _labels(world, rule, problems, seed, args.k)
        data = root / f"seed{seed}-{rule}"
        counts = _export(problems, results, rule, data)
        settings = TrainSettings(max_steps=args.train_steps, batch_size=args.batch_size, learning_rate=args.lr,
                                 max_length=args.max_length, held_out=16, seed=seed, save_steps=0)
        with contextlib.redirect_stdout(sys.stderr):  # the trainer's log lines are not the report
            trained = train_prm(data, args.model, data / "prm", settings)
        # Scored once; the threshold fitted on the first half, F1 on the second (and at 0.5).
        prm = load_prm(str(data / "prm"), separator=trained_separator(data / "prm") or "\n")
        dev_scored, test_scored = score_items(prm, dev_items), score_items(prm, test_items)
        threshold = fit_threshold(dev_scored)
        scored = subset_score("test", test_scored, threshold, 0, 0.0)
        fixed = subset_score("test", test_scored, 0.5, 0, 0.0)
        out.append({
            "seed": seed, "rule": rule, **counts,
            "tokens": sum(r.generated_tokens for r in results if r is not None),
            "held_out_loss": [round(trained.held_out_loss_before, 4), round(trained.held_out_loss_after, 4)],
            "threshold": round(threshold, 4), "items": scored.n_items,
            "acc_erroneous": scored.acc_erroneous, "acc_correct": scored.acc_correct, "f1": scored.f1,
            "f1_at_0.5": fixed.f1, "wall_s": round(time.perf_counter() - t0, 1),
        })
        r = out[-1]
        log.info("seed %d %s: %d rows trained on, held-out loss %.3f -> %.3f; F1 %.3f (erroneous %.3f, correct %.3f, "
                 "threshold %.3f), F1 at 0.5 %.3f", seed, rule, r["rows"], *r["held_out_loss"], r["f1"] or 0.0,
                 r["acc_erroneous"] or 0.0, r["acc_correct"] or 0.0, r["threshold"], r["f1_at_0.5"] or 0.0)
    return out


def summarize(rows: list[dict[str, Any]], rules: list[str]) -> list[dict[str, Any]]:
    out = []
    for rule in rules:
        mine = [r for r in rows if r["rule"] == rule]
        f1 = [r["f1"] for r in mine if r["f1"] is not None]
        fixed = [r["f1_at_0.5"] for r in mine if r["f1_at_0.5"] is not None]
        out.append({
            "rule": rule, "seeds": len(mine),
            "f1_mean": statistics.fmean(f1) if f1 else None,
            "f1_sd": statistics.stdev(f1) if len(f1) > 1 else None,
            "f1_min": min(f1) if f1 else None, "f1_max": max(f1) if f1 else None,
            "f1_at_0.5_mean": statistics.fmean(fixed) if fixed else None,
            "positive_share": sum(r["positive"] for r in mine) / max(1, sum(r["steps"] for r in mine)),
        })
    base = next((s for s in out if s["rule"] == BASELINE), None)
    for s in out:
        s["f1_vs_" + BASELINE] = (s["f1_mean"] / base["f1_mean"]) if base and base["f1_mean"] and s["f1_mean"] is not None else None
    # Paired by seed: how often each rule's PRM beat the baseline's on the same questions and items.
    for s in out:
        wins = [a["f1"] > b["f1"] for a in rows if a["rule"] == s["rule"]
                for b in rows if b["rule"] == BASELINE and b["seed"] == a["seed"] and a["f1"] is not None and b["f1"] is not None]
        s["seeds_above_" + BASELINE] = sum(wins)
    return out


def _f(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def format_report(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = [f"apsgen bench prm: world {s['world']} (recover {s['recover']}, success {s['success']}), "
             f"{s['problems']} questions labelled per seed, {s['items']} held-out items per seed (half fit the "
             f"threshold, half scored), PRM {s['model']} trained {s['train_steps']} steps x {s['batch_size']} rows, "
             f"seeds {','.join(map(str, s['seeds']))}",
             "", "seed  rule          rows  steps  +share  loss before->after  thr    err acc  ok acc    F1  F1@0.5"]
    for r in report["runs"]:
        lines.append(f"{r['seed']:>4}  {r['rule']:<12} {r['rows']:>5} {r['steps']:>6}  {r['positive'] / max(1, r['steps']):>6.3f}  "
                     f"{r['held_out_loss'][0]:>8.4f} -> {r['held_out_loss'][1]:<8.4f} {r['threshold']:>5.3f}  "
                     f"{_f(r['acc_erroneous'], '.3f'):>7}  {_f(r['acc_correct'], '.3f'):>6}  {_f(r['f1'], '.3f'):>5}  "
                     f"{_f(r['f1_at_0.5'], '.3f'):>6}")
    lines += ["", f"rule          F1 mean   sd     min    max    F1@0.5  vs {BASELINE}  seeds above it"]
    for m in report["summary"]:
        lines.append(f"{m['rule']:<12}  {_f(m['f1_mean'], '.3f'):>7}  {_f(m['f1_sd'], '.3f'):>5}  {_f(m['f1_min'], '.3f'):>5}  "
                     f"{_f(m['f1_max'], '.3f'):>5}  {_f(m['f1_at_0.5_mean'], '.3f'):>6}  {_f(m['f1_vs_' + BASELINE], '.2f'):>6}  "
                     f"{m['seeds_above_' + BASELINE]} of {m['seeds']}")
    lines.append("(a small model on simulated text: it compares the rules' labels with all else equal, not a real PRM's gain)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        seeds = [int(x) for x in str(args.seeds).split(",")]
    except ValueError:
        raise SystemExit(f"apsgen bench prm: --seeds {args.seeds!r}: expected comma-separated integers, e.g. 2,3,4") from None
    rules = args.rules.split(",")
    for r in rules:
        if r not in RULES:
            raise SystemExit(f"apsgen bench prm: unknown rule {r!r}; choose from {', '.join(RULES)}")
    if args.items < 8 or args.problems < 4:
        raise SystemExit(f"apsgen bench prm: --items {args.items} and --problems {args.problems}: at least 8 and 4")
    from apsgen.prm.train import resolve_base

    resolve_base(args.model)  # prepared once, before any seed
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="apsgen-bench-prm-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        runs = [r for seed in seeds for r in run_seed(seed, rules, args, root)]
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    report = {
        "settings": {"world": args.world, "recover": args.recover, "success": args.success, "problems": args.problems,
                     "items": args.items, "k": args.k, "model": args.model, "train_steps": args.train_steps,
                     "batch_size": args.batch_size, "lr": args.lr, "max_length": args.max_length, "seeds": seeds,
                     "wall_s": round(time.perf_counter() - t0, 1)},
        "runs": runs,
        "summary": summarize(runs, rules),
    }
    print(json.dumps(report, sort_keys=True) if args.json else format_report(report))
    return 0
