"""`apsgen bench verify`: apsgen's answer verifier against math-verify, side by side.

Four workloads, each scored for both: (1) the case table (`verify_cases.py`, shipped with this
package, or `--cases FILE`, such as the equivalence cases of other projects' test suites): each
prediction read as a job reads a rollout (its final answer extracted, or the whole text when it is
an answer alone), each gold as a job reads a dataset's, with adversarial inputs for latency; (2) the
family table of solution endings (`verify_families.py`, extraction included); (3) real model
solutions with a right/wrong mark (`--real FILE_OR_HUB_NAME`: `gold`, `solution`, `correct`);
(4) a stream drawn from a dataset's gold answers (`--data FILE_OR_HUB_NAME`: equal forms, near
misses and junk, with the repetition a search produces) for accuracy and checks per CPU-second.
math-verify runs in a child process (its timeouts need a main thread, and its expression parser
hands text to sympy's `parse_expr`) inside a temporary directory, on the same inputs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any

from apsgen.bench.verify_cases import ADVERSARIAL, CASES, INJECTIONS, Case
from apsgen.bench.verify_families import FAMILIES
from apsgen.verify import Outcome, Verifier
from apsgen.verify.normalize import normalize
from apsgen.verify.numeric import parse_rational

log = logging.getLogger(__name__)

TIMEOUT_S = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--cases", metavar="FILE",
                        help="a case table to use instead of the shipped one: jsonl rows with gold, pred, "
                             "expected (bool) and optionally category")
    parser.add_argument("--real", metavar="FILE_OR_HUB_NAME",
                        help="real model solutions with a mark: rows with gold, solution, correct (bool)")
    parser.add_argument("--data", metavar="FILE_OR_HUB_NAME",
                        help="a dataset whose gold answers seed the stream (MATH500-style; see --answer-column)")
    parser.add_argument("--split", default="test", help="split of a Hub dataset given to --data/--real (default test)")
    parser.add_argument("--answer-column", default="answer", help="--data's gold-answer column (default answer)")
    parser.add_argument("--checks-per-problem", type=int, default=200,
                        help="stream checks drawn per gold answer (default 200)")
    parser.add_argument("--math-verify-sample", type=int, default=1000,
                        help="stream checks given to math-verify (default 1000; it is slow)")
    parser.add_argument("--seed", type=int, default=0)


# -- inputs -----------------------------------------------------------------------------------


def _rows(source: str, split: str, columns: dict[str, type], what: str) -> list[dict[str, Any]]:
    """Rows of a local file or Hub dataset with the columns `what` needs, or a clear exit."""
    from apsgen.config import DatasetSpec
    from apsgen.data import DatasetError, load_rows

    try:
        ds = load_rows(DatasetSpec(path=source, split=split))
    except DatasetError as e:
        raise SystemExit(f"apsgen bench verify: {what}: {e}") from e
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise SystemExit(f"apsgen bench verify: {what} {source!r} has no column {', '.join(map(repr, missing))}; "
                         f"columns are: {', '.join(ds.column_names)}")
    rows = []
    for n, row in enumerate(ds, 1):
        for column, kind in columns.items():
            if not isinstance(row[column], kind):
                raise SystemExit(f"apsgen bench verify: {what} {source!r} row {n}: {column} is "
                                 f"{row[column]!r}, expected {kind.__name__}")
        rows.append(row)
    return rows


def load_cases(path: str | None) -> list[Case]:
    if path is None:
        return CASES
    rows = _rows(path, "train", {"gold": str, "pred": str, "expected": bool}, "--cases")
    return [Case(str(r.get("category") or "cases"), r["gold"], r["pred"], r["expected"]) for r in rows]


def apsgen_gold(gold: str) -> str:
    """The gold answer as a job hands it to the verifier (dataset.answer_format: auto)."""
    from apsgen.data import gold_answer

    return gold_answer(gold, "auto") or gold


def _as_decimal(value: Fraction) -> str | None:
    """The terminating decimal of `value`, or None when it repeats."""
    den = value.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den != 1:
        return None
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
    return f"{float(value):.{places}f}" if places <= 12 else None


def equal_forms(gold: str) -> list[str]:
    """Ways a policy writes the same answer."""
    forms = {gold, gold.replace(" ", ""), re.sub(r"([+=,])", r" \1 ", gold)}
    forms.add(gold.replace("\\frac", "\\dfrac"))
    forms.add(gold.replace("\\left", "").replace("\\right", ""))
    if "=" not in gold and "\\in" not in gold:
        forms.add("x = " + gold)
    value = parse_rational(normalize(gold))
    if value is not None:
        if value.denominator == 1:
            forms |= {str(value.numerator), f"{value.numerator}.0"}
            if abs(value) >= 1000:
                forms.add(f"{value.numerator:,}")
        else:
            forms |= {f"\\frac{{{value.numerator}}}{{{value.denominator}}}",
                      f"{value.numerator}/{value.denominator}"}
        decimal = _as_decimal(value)
        if decimal is not None:
            forms.add(decimal)
    match = re.fullmatch(r"(\d+)\s*\\sqrt\{?(\d+)\}?", gold)
    if match:
        a, b = int(match.group(1)), int(match.group(2))
        forms.add(f"\\sqrt{{{a * a * b}}}")
    if "^\\circ" in gold:
        forms.add(gold.replace("^\\circ", "") + " degrees")
    return sorted(forms)


def near_misses(gold: str) -> list[str]:
    """Wrong answers a policy produces: off by one, sign flips, reciprocals, roundings."""
    misses = set()
    value = parse_rational(normalize(gold))
    if value is not None:
        candidates = [value + 1, value - 1, -value, value * 10]
        if value not in (0, 1, -1):
            candidates.append(1 / value)
        for c in candidates:
            if c != value:
                misses.add(str(c.numerator) if c.denominator == 1 else f"\\frac{{{c.numerator}}}{{{c.denominator}}}")
        if _as_decimal(value) is None:
            misses.add(f"{float(value):.3f}")  # 0.333 for 1/3: close, but not equal
    digits = [m.start() for m in re.finditer(r"\d", gold)]
    if digits:
        i = digits[0]
        misses.add(gold[:i] + str((int(gold[i]) + 1) % 10) + gold[i + 1 :])
    if "+" in gold:
        misses.add(gold.replace("+", "-", 1))
    elif "-" in gold[1:]:
        misses.add(gold[0] + gold[1:].replace("-", "+", 1))
    misses.discard(gold)
    return sorted(misses)


JUNK = ["", "banana", "\\frac{", "I don't know", "x", "\\infty", "-1"]


def build_stream(golds: list[str], per_problem: int, seed: int) -> list[tuple[str, str, bool]]:
    """(gold, solution text, expected) with the answer repetition of a search's rollouts."""
    rng = random.Random(seed)
    stream: list[tuple[str, str, bool]] = []
    for gold in golds:
        pool = [(p, True) for p in equal_forms(gold)]
        pool += [(p, False) for p in near_misses(gold)]
        pool += [(p, False) for p in rng.sample(JUNK, 2) if normalize(p) != normalize(gold)]
        pool.append((rng.choice(golds), None))  # another problem's answer (rarely equal)
        rng.shuffle(pool)
        # Rollouts concentrate on a few answers: Zipf-like weights over the shuffled pool.
        weights = [1 / (rank + 1) ** 1.2 for rank in range(len(pool))]
        for pred, label in rng.choices(pool, weights, k=per_problem):
            if label is None:
                label = normalize(pred) == normalize(gold)
            if rng.random() < 0.03:
                stream.append((gold, "Let me keep going and compute", False))
            else:
                stream.append((gold, f"Adding these up gives the result.\nThe answer is $\\boxed{{{pred}}}$.", label))
    return stream


# -- apsgen -----------------------------------------------------------------------------------


def _worker_cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            pass  # not Linux, or the worker is gone
    return total


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _run_apsgen(
    pairs: list[tuple[str, str]], solutions: bool
) -> tuple[list[bool], list[float], float, dict[str, int]]:
    """Outcomes (correct?), per-check latency, CPU seconds (this process + workers), stats."""
    with Verifier(timeout_s=TIMEOUT_S) as verifier:
        verifier.warm_up()
        pids = verifier.worker_pids()
        worker_cpu_before = _worker_cpu_seconds(pids)
        cpu_before = time.process_time()
        correct: list[bool] = []
        latencies: list[float] = []
        for gold, pred in pairs:
            started = time.perf_counter()
            if solutions:
                verdict = verifier.check_batch([pred], gold)[0]
            else:
                verdict = verifier.check_answers([pred], gold)[0]
            latencies.append(time.perf_counter() - started)
            correct.append(verdict.outcome is Outcome.CORRECT)
        cpu = time.process_time() - cpu_before
        pids = verifier.worker_pids()
        cpu += max(0.0, _worker_cpu_seconds(pids) - worker_cpu_before)
        return correct, latencies, cpu, verifier.stats()


# -- math-verify (child process) --------------------------------------------------------------


def _math_verify_child() -> None:
    """Read pairs on stdin, write [correct, seconds] per pair and the CPU time on stdout."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig(), ExprExtractionConfig()]
    request = json.load(sys.stdin)
    gold_cache: dict[str, Any] = {}
    results = []
    cpu_before = time.process_time()
    for gold, pred, is_solution in request["pairs"]:
        started = time.perf_counter()
        try:
            if gold not in gold_cache:  # a search parses its gold once per problem
                wrapped = any(m in gold for m in ("$", "\\(", "\\[", "\\boxed"))
                gold_cache[gold] = parse(gold if wrapped else f"${gold}$", extraction_config=config, parsing_timeout=2)
            text = pred if is_solution else f"${pred}$"
            parsed = parse(text, extraction_config=config, parsing_timeout=2)
            ok = bool(verify(gold_cache[gold], parsed, timeout_seconds=2))
        except Exception:
            ok = False
        results.append([ok, time.perf_counter() - started])
    json.dump({"results": results, "cpu": time.process_time() - cpu_before}, sys.stdout)


def _run_math_verify(pairs: list[tuple[str, str, bool]]) -> tuple[list[bool], list[float], float, bool]:
    """Outcomes, latencies, CPU seconds, and whether an injected command ran in its directory."""
    with tempfile.TemporaryDirectory(prefix="apsgen-bench-mv-") as workdir:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        proc = subprocess.run(
            [sys.executable, "-m", "apsgen.bench.verify", "--math-verify-child"],
            input=json.dumps({"pairs": pairs}), capture_output=True, text=True, cwd=workdir,
            env=env, timeout=600,
        )
        injected = (Path(workdir) / "PWNED").exists()
    if proc.returncode != 0:
        raise RuntimeError(f"math-verify child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    return [r[0] for r in report["results"]], [r[1] for r in report["results"]], report["cpu"], injected


# -- report -----------------------------------------------------------------------------------


def _summary(correct: list[bool], expected: list[bool], latencies: list[float], cpu: float) -> dict[str, float]:
    hits = sum(c == e for c, e in zip(correct, expected))
    return {
        "accuracy": round(hits / len(expected), 4) if expected else 0.0,
        "checks_per_s": round(len(latencies) / cpu, 1) if cpu > 0 else 0.0,
        "p50_ms": round(_percentile(latencies, 0.5) * 1000, 3),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 3),
        "max_ms": round(max(latencies, default=0.0) * 1000, 3),
        "checks": len(latencies),
    }


def _score(got: list[bool], expected: list[bool]) -> dict[str, Any]:
    return {
        "accuracy": round(sum(g == e for g, e in zip(got, expected)) / len(expected), 4) if expected else 0.0,
        "false_positives": sum(g and not e for g, e in zip(got, expected)),
        "false_negatives": sum(e and not g for g, e in zip(got, expected)),
        "cases": len(expected),
    }


def _delimited(text: str) -> bool:
    """The text marks its own math (a solution, or an answer in `$...$`)."""
    return any(m in text for m in ("$", "\\(", "\\[", "\\boxed"))


def _case_table(cases: list[Case]) -> dict[str, Any]:
    """(1) bare answers, then adversarial inputs (latency only; none may come out correct)."""
    huge = ["1" * 1_000_000, "(" * 5000 + "1" + ")" * 5000, "\\boxed{" * 1000]
    adversarial = [*ADVERSARIAL, *INJECTIONS]
    expected = [c.expected for c in cases]
    # A prediction is read as a job reads a rollout (its answer extracted, or the whole text when
    # it is an answer alone), a gold as a job reads a dataset's (a whole solution gives its box);
    # math-verify gets the texts as written, a bare answer in `$...$`.
    a_ok, a_lat, a_cpu, _ = _run_apsgen(
        [(apsgen_gold(c.gold), c.pred) for c in cases] + [("5", p) for p in adversarial + huge], solutions=True
    )
    m_ok, m_lat, m_cpu, m_injected = _run_math_verify(
        [(c.gold, c.pred, _delimited(c.pred)) for c in cases] + [("5", p, False) for p in adversarial]
    )
    n = len(cases)
    out: dict[str, Any] = {"cases": n, "adversarial": len(adversarial) + len(huge), "math_verify_ran_injected_code": m_injected}
    for name, ok, lat, cpu in (("apsgen", a_ok, a_lat, a_cpu), ("math_verify", m_ok, m_lat, m_cpu)):
        by_category: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for case, got in zip(cases, ok):
            by_category[case.category][0] += got == case.expected
            by_category[case.category][1] += 1
        out[name] = {
            **_score(ok[:n], expected),
            **{k: v for k, v in _summary(ok[:n], expected, lat, cpu).items() if k.endswith("_ms")},
            "adversarial_correct": sum(ok[n:]),
            "per_category": {c: round(v[0] / v[1], 3) for c, v in sorted(by_category.items())},
        }
    return out


def _family_table() -> dict[str, Any]:
    """(2) solution endings by family, extraction included."""
    expected = [c.expected for c in FAMILIES]
    a_ok, _, _, _ = _run_apsgen([(apsgen_gold(c.gold), c.pred) for c in FAMILIES], solutions=True)
    m_ok, _, _, _ = _run_math_verify([(c.gold, c.pred, True) for c in FAMILIES])
    out: dict[str, Any] = {"cases": len(FAMILIES)}
    for name, ok in (("apsgen", a_ok), ("math_verify", m_ok)):
        families: dict[str, list[bool]] = defaultdict(list)
        for case, got in zip(FAMILIES, ok):
            families[case.family].append(got)
        out[name] = {
            **_score(ok, expected),
            "per_family": {
                f: _score(got, [c.expected for c in FAMILIES if c.family == f]) for f, got in sorted(families.items())
            },
        }
    return out


def _real_table(source: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """(3) real model solutions against the publisher's mark, per source (the id's prefix)."""
    expected = [r["correct"] for r in rows]
    a_ok, _, a_cpu, a_stats = _run_apsgen([(apsgen_gold(r["gold"]), r["solution"]) for r in rows], solutions=True)
    m_ok, _, m_cpu, _ = _run_math_verify([(r["gold"], r["solution"], True) for r in rows])
    sources = [str(r.get("id", "")).split("-")[0] or "all" for r in rows]
    out: dict[str, Any] = {"source": source, "solutions": len(rows)}
    for name, ok, cpu in (("apsgen", a_ok, a_cpu), ("math_verify", m_ok, m_cpu)):
        out[name] = {
            **_score(ok, expected),
            "solutions_per_s": round(len(rows) / cpu, 1) if cpu > 0 else 0.0,
            "per_source": {
                src: _score([g for g, s in zip(ok, sources) if s == src], [e for e, s in zip(expected, sources) if s == src])
                for src in sorted(set(sources))
            },
        }
    ids = [str(r.get("id", n)) for n, r in enumerate(rows)]
    out["apsgen_wrong_math_verify_right"] = [i for i, a, m, e in zip(ids, a_ok, m_ok, expected) if a != e and m == e]
    out["math_verify_wrong_apsgen_right"] = [i for i, a, m, e in zip(ids, a_ok, m_ok, expected) if m != e and a == e]
    out["both_disagree_with_mark"] = [i for i, a, m, e in zip(ids, a_ok, m_ok, expected) if a != e and m != e]
    out["apsgen"]["verifier_stats"] = a_stats
    return out


def _stream(args: argparse.Namespace, golds: list[str]) -> dict[str, Any]:
    """(4) a search-like stream from the dataset's golds: accuracy and checks per CPU-second."""
    stream = build_stream(golds, args.checks_per_problem, args.seed)
    sample = random.Random(args.seed).sample(stream, min(args.math_verify_sample, len(stream)))
    s_ok, s_lat, s_cpu, s_stats = _run_apsgen([(g, s) for g, s, _ in stream], solutions=True)
    unique = sorted({(g, s) for g, s, _ in stream})
    _, _, cold_cpu, cold_stats = _run_apsgen(unique, solutions=True)  # every pair once: no cache hits
    sub_a_ok, _, _, _ = _run_apsgen([(g, s) for g, s, _ in sample], solutions=True)
    sub_m_ok, sub_m_lat, sub_m_cpu, _ = _run_math_verify([(g, s, True) for g, s, _ in sample])
    expected = [e for _, _, e in stream]
    sub_expected = [e for _, _, e in sample]
    return {
        "source": args.data, "checks": len(stream), "repetition": round(1 - len(unique) / len(stream), 4),
        "math_verify_sample": len(sample),
        "apsgen": {**_summary(s_ok, expected, s_lat, s_cpu),
                   "sample_accuracy": _score(sub_a_ok, sub_expected)["accuracy"],
                   "cold_checks_per_s": round(len(unique) / cold_cpu, 1) if cold_cpu > 0 else 0.0,
                   "pool_share_cold": round(cold_stats.get("symbolic_checks", 0) / max(1, len(unique)), 4),
                   "verifier_stats": s_stats},
        "math_verify": {**_summary(sub_m_ok, sub_expected, sub_m_lat, sub_m_cpu),
                        "sample_accuracy": _score(sub_m_ok, sub_expected)["accuracy"]},
    }


def run(args: argparse.Namespace) -> int:
    # Every input is read before anything runs: a bad file fails in seconds, not after the tables.
    cases = load_cases(args.cases)
    real = _rows(args.real, args.split, {"gold": str, "solution": str, "correct": bool}, "--real") if args.real else None
    golds = ([r[args.answer_column] for r in _rows(args.data, args.split, {args.answer_column: str}, "--data")]
             if args.data else None)
    report: dict[str, Any] = {"timeout_s": TIMEOUT_S, "cpu_count": os.cpu_count(), "skipped": {}}
    report["cases"] = _case_table(cases)
    report["families"] = _family_table()
    if real is not None:
        report["real"] = _real_table(args.real, real)
    else:
        report["skipped"]["real"] = ("no --real FILE_OR_HUB_NAME: real model solutions with columns gold, "
                                     "solution, correct (bool), e.g. ProcessBench items joined with their gold answers")
    if golds is not None:
        report["stream"] = _stream(args, golds)
    else:
        report["skipped"]["stream"] = (f"no --data FILE_OR_HUB_NAME: a dataset with a {args.answer_column!r} column "
                                       "of gold answers (MATH500: HuggingFaceH4/MATH-500, or its jsonl)")
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        _print_table(report)
    return 0


def _print_table(report: dict[str, Any]) -> None:
    names = ("apsgen", "math_verify")

    def line(label: str, row: dict[str, Any]) -> str:
        return (f"  {label:16}{row['accuracy']:>9.3f}{row['false_positives']:>6}{row['false_negatives']:>6}"
                f"{row['cases']:>7}")

    header = f"  {'':16}{'accuracy':>9}{'FP':>6}{'FN':>6}{'cases':>7}"
    t = report["cases"]
    print(f"case table (bare answers): {t['cases']} pairs; latency also on {t['adversarial']} adversarial inputs")
    print(header)
    for name in names:
        print(line(name, t[name]) + f"   p99 {t[name]['p99_ms']:.1f} ms, max {t[name]['max_ms']:.0f} ms")
    print("  per category (apsgen / math-verify): " + ", ".join(
        f"{c} {v:.2f}/{t['math_verify']['per_category'][c]:.2f}" for c, v in t["apsgen"]["per_category"].items()))
    print(f"  adversarial inputs judged correct: apsgen {t['apsgen']['adversarial_correct']}, math-verify "
          f"{t['math_verify']['adversarial_correct']}; math-verify ran injected code: {t['math_verify_ran_injected_code']}")
    f = report["families"]
    print(f"family table (solution endings, extraction included): {f['cases']} cases")
    print(header)
    for name in names:
        print(line(name, f[name]))
    print(f"  {'family':22}{'cases':>6}{'apsgen':>8}{'math-verify':>12}{'FP a/m':>8}")
    fa, fm = f["apsgen"]["per_family"], f["math_verify"]["per_family"]
    for fam in fa:
        print(f"  {fam:22}{fa[fam]['cases']:>6}{fa[fam]['accuracy']:>8.3f}{fm[fam]['accuracy']:>12.3f}"
              f"{fa[fam]['false_positives']:>5}/{fm[fam]['false_positives']}")
    if "real" in report:
        r = report["real"]
        print(f"real model solutions ({r['source']}): {r['solutions']} against the publisher's right/wrong mark")
        print(header + f"{'solutions/s':>13}")
        for name in names:
            print(line(name, r[name]) + f"{r[name]['solutions_per_s']:>13.0f}")
            for src, row in r[name]["per_source"].items():
                print(line(f"  {src}", row))
        print(f"  apsgen wrong where math-verify is right: {len(r['apsgen_wrong_math_verify_right'])} "
              f"{r['apsgen_wrong_math_verify_right'][:10]}; the reverse: {len(r['math_verify_wrong_apsgen_right'])}; "
              f"both against the mark: {r['both_disagree_with_mark']}")
    if "stream" in report:
        st = report["stream"]
        a, m = st["apsgen"], st["math_verify"]
        print(f"stream ({st['source']}): {st['checks']} checks, {st['repetition']:.1%} repeated pairs; "
              f"math-verify on a random {st['math_verify_sample']} (apsgen scored on it too)")
        print(f"  {'':14}{'accuracy':>9}{'sample acc':>11}{'checks/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        for name, row in (("apsgen", a), ("math_verify", m)):
            print(f"  {name:14}{row['accuracy']:>9.3f}{row['sample_accuracy']:>11.3f}{row['checks_per_s']:>10.0f}"
                  f"{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['max_ms']:>9.0f}")
        print(f"  checks/s = checks per CPU-second (caller + verify workers), with the cache; every pair once "
              f"(no cache): apsgen {a['cold_checks_per_s']:.0f}/s, {a['pool_share_cold']:.1%} of them in the pool")
        print(f"  apsgen verifier stats: {a['verifier_stats']}")
    for part, why in report["skipped"].items():
        print(f"{part}: skipped ({why})")


if __name__ == "__main__":
    if sys.argv[1:] == ["--math-verify-child"]:
        _math_verify_child()
    else:
        parser = argparse.ArgumentParser(prog="apsgen bench verify")
        add_arguments(parser)
        sys.exit(run(parser.parse_args()))
