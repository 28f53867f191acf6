"""`apsgen bench verify`: apsgen's answer verifier against math-verify, side by side.

Two workloads: (1) the case table in tests/verify_cases.py (accuracy per category, plus the
adversarial inputs for latency), and (2) a realistic stream: MATH500's gold answers against
predictions derived from them (equal forms, near misses, junk) drawn with the repetition a
search produces. math-verify runs in a child process (its timeouts need a main thread, and its
expression parser hands text to sympy's `parse_expr`) inside a temporary directory, on the same
inputs (a subsample of the stream: it is ~100x slower).
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
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any

from apsgen.verify import Outcome, Verifier
from apsgen.verify.normalize import normalize
from apsgen.verify.numeric import parse_rational

log = logging.getLogger(__name__)

_REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = _REPO.parent / "shared" / "data" / "math500.jsonl"
TIMEOUT_S = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"MATH500 jsonl (default {DEFAULT_DATA})")
    parser.add_argument("--checks-per-problem", type=int, default=200,
                        help="stream checks drawn per gold answer (default 200)")
    parser.add_argument("--math-verify-sample", type=int, default=1000,
                        help="stream checks given to math-verify (default 1000; it is slow)")
    parser.add_argument("--seed", type=int, default=0)


# -- inputs -----------------------------------------------------------------------------------


def _load_cases() -> tuple[list[Any], list[str]]:
    tests = _REPO / "tests"
    if not (tests / "verify_cases.py").exists():
        raise SystemExit(f"apsgen bench verify: case table not found at {tests / 'verify_cases.py'}")
    sys.path.insert(0, str(tests))
    try:
        from verify_cases import ADVERSARIAL, CASES, INJECTIONS
    finally:
        sys.path.remove(str(tests))
    return CASES, [*ADVERSARIAL, *INJECTIONS]


def _load_families() -> list[Any]:
    tests = _REPO / "tests"
    if not (tests / "verify_families.py").exists():
        raise SystemExit(f"apsgen bench verify: family table not found at {tests / 'verify_families.py'}")
    sys.path.insert(0, str(tests))
    try:
        from verify_families import FAMILIES
    finally:
        sys.path.remove(str(tests))
    return FAMILIES


def apsgen_gold(gold: str) -> str:
    """The gold answer as a job hands it to the verifier (dataset.answer_format: auto)."""
    from apsgen.data import gold_answer

    return gold_answer(gold, "auto") or gold


def _load_golds(path: Path) -> list[str]:
    if not path.exists():
        raise SystemExit(f"apsgen bench verify: {path} not found; pass --data PATH to MATH500 jsonl")
    golds = []
    with path.open() as f:
        for line_no, line in enumerate(f, 1):
            row = json.loads(line)
            if "answer" not in row:
                raise SystemExit(f"{path}:{line_no}: no 'answer' field; fields are {sorted(row)}")
            golds.append(row["answer"])
    return golds


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
        pids = verifier._pool.worker_pids() if verifier._pool else []
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
        pids = verifier._pool.worker_pids() if verifier._pool else []
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


def run(args: argparse.Namespace) -> int:
    cases, adversarial = _load_cases()
    golds = _load_golds(args.data)
    stream = build_stream(golds, args.checks_per_problem, args.seed)
    rng = random.Random(args.seed)
    sample = rng.sample(stream, min(args.math_verify_sample, len(stream)))
    huge = ["1" * 1_000_000, "(" * 5000 + "1" + ")" * 5000, "\\boxed{" * 1000]

    # (1) the case table, then adversarial inputs (latency only; none may come out correct)
    table_pairs = [(c.gold, c.pred) for c in cases]
    expected = [c.expected for c in cases]
    a_ok, a_lat, a_cpu, _ = _run_apsgen(table_pairs + [("5", p) for p in adversarial + huge], solutions=False)
    m_ok, m_lat, m_cpu, m_injected = _run_math_verify(
        [(g, p, False) for g, p in table_pairs] + [("5", p, False) for p in adversarial]
    )
    n = len(cases)
    table = {
        "apsgen": _summary(a_ok[:n], expected, a_lat, a_cpu),
        "math_verify": _summary(m_ok[:n], expected, m_lat, m_cpu),
    }
    table["apsgen"]["adversarial_correct"] = sum(a_ok[n:])
    table["math_verify"]["adversarial_correct"] = sum(m_ok[n:])
    per_category: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"apsgen": [0, 0], "math_verify": [0, 0]})
    for case, a, m in zip(cases, a_ok, m_ok):
        for name, got in (("apsgen", a), ("math_verify", m)):
            per_category[case.category][name][0] += got == case.expected
            per_category[case.category][name][1] += 1

    # (1b) the family table: solution endings, extraction included
    families = _load_families()
    f_expected = [c.expected for c in families]
    f_a_ok, _, _, _ = _run_apsgen([(apsgen_gold(c.gold), c.pred) for c in families], solutions=True)
    f_m_ok, _, _, _ = _run_math_verify([(c.gold, c.pred, True) for c in families])
    per_family: dict[str, dict[str, list[int]]] = defaultdict(
        lambda: {"apsgen": [0, 0, 0], "math_verify": [0, 0, 0]}  # right, cases, false positives
    )
    for case, a, m in zip(families, f_a_ok, f_m_ok):
        for name, got in (("apsgen", a), ("math_verify", m)):
            row = per_family[case.family][name]
            row[0] += got == case.expected
            row[1] += 1
            row[2] += got and not case.expected

    # (2) the realistic stream: apsgen on all of it, both on the same subsample
    s_ok, s_lat, s_cpu, s_stats = _run_apsgen([(g, s) for g, s, _ in stream], solutions=True)
    s_expected = [e for _, _, e in stream]
    sub_a_ok, _, _, _ = _run_apsgen([(g, s) for g, s, _ in sample], solutions=True)
    sub_m_ok, sub_m_lat, sub_m_cpu, _ = _run_math_verify([(g, s, True) for g, s, _ in sample])
    sub_expected = [e for _, _, e in sample]
    unique = len({(normalize(g), s) for g, s, _ in stream})
    streams = {
        "apsgen": {**_summary(s_ok, s_expected, s_lat, s_cpu),
                   "sample_accuracy": _summary(sub_a_ok, sub_expected, [0.0], 1.0)["accuracy"]},
        "math_verify": {**_summary(sub_m_ok, sub_expected, sub_m_lat, sub_m_cpu),
                        "sample_accuracy": _summary(sub_m_ok, sub_expected, [0.0], 1.0)["accuracy"]},
    }

    report = {
        name: {
            "accuracy": table[name]["accuracy"],
            "checks_per_s": streams[name]["checks_per_s"],
            "p99_ms": streams[name]["p99_ms"],
            "max_ms": max(table[name]["max_ms"], streams[name]["max_ms"]),
            "table": table[name],
            "stream": streams[name],
            "per_category": {c: round(v[name][0] / v[name][1], 3) for c, v in sorted(per_category.items())},
            "per_family": {f: {"accuracy": round(v[name][0] / v[name][1], 3), "cases": v[name][1],
                               "false_positives": v[name][2]} for f, v in sorted(per_family.items())},
            "family_accuracy": round(sum(v[name][0] for v in per_family.values())
                                     / max(1, sum(v[name][1] for v in per_family.values())), 4),
            "family_false_positives": sum(v[name][2] for v in per_family.values()),
        }
        for name in ("apsgen", "math_verify")
    }
    report["apsgen"]["verifier_stats"] = s_stats
    report["math_verify"]["ran_injected_code"] = m_injected
    report["setup"] = {
        "table_cases": n, "adversarial": len(adversarial) + len(huge), "stream_checks": len(stream),
        "stream_repetition": round(1 - unique / len(stream), 4), "math_verify_sample": len(sample),
        "timeout_s": TIMEOUT_S, "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        _print_table(report)
    return 0


def _print_table(report: dict[str, Any]) -> None:
    setup = report["setup"]
    print(f"case table: {setup['table_cases']} pairs (+{setup['adversarial']} adversarial inputs, "
          f"timed only; math-verify skips the 3 megabyte-sized ones)")
    print(f"stream: {setup['stream_checks']} checks from MATH500 golds, "
          f"{setup['stream_repetition']:.1%} repeated pairs; math-verify on a random "
          f"{setup['math_verify_sample']}-check subsample (apsgen scored on it too)")
    print("checks/s = checks per CPU-second (caller + verify workers); latency per check")
    header = f"{'':14}{'accuracy':>9}{'stream acc':>11}{'sample acc':>11}{'checks/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    print(header)
    for name in ("apsgen", "math_verify"):
        r = report[name]
        s = r["stream"]
        print(f"{name:14}{r['accuracy']:>9.3f}{s['accuracy']:>11.3f}{s['sample_accuracy']:>11.3f}"
              f"{r['checks_per_s']:>10.0f}{s['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['max_ms']:>9.0f}")
    print("case table, accuracy per category (apsgen / math-verify):")
    cats = report["apsgen"]["per_category"]
    for cat in cats:
        print(f"  {cat:12} {cats[cat]:.3f} / {report['math_verify']['per_category'][cat]:.3f}")
    t = report["apsgen"]["table"]
    print(f"case table latency, apsgen: p99 {t['p99_ms']:.1f} ms, max {t['max_ms']:.0f} ms "
          f"(timeout {setup['timeout_s']} s); math-verify: p99 {report['math_verify']['table']['p99_ms']:.0f} ms, "
          f"max {report['math_verify']['table']['max_ms']:.0f} ms")
    print(f"adversarial inputs judged correct: apsgen {t['adversarial_correct']}, "
          f"math-verify {report['math_verify']['table']['adversarial_correct']}; "
          f"math-verify ran injected code: {report['math_verify']['ran_injected_code']}")
    print(f"apsgen verifier stats (stream): {report['apsgen']['verifier_stats']}")
    fa, fm = report["apsgen"]["per_family"], report["math_verify"]["per_family"]
    print(f"family table (tests/verify_families.py, solution endings, extraction included): "
          f"apsgen {report['apsgen']['family_accuracy']:.3f} ({report['apsgen']['family_false_positives']} false "
          f"positives), math-verify {report['math_verify']['family_accuracy']:.3f} "
          f"({report['math_verify']['family_false_positives']} false positives)")
    print(f"  {'family':22}{'cases':>6}{'apsgen':>8}{'math-verify':>12}{'FP a/m':>8}")
    for fam in fa:
        print(f"  {fam:22}{fa[fam]['cases']:>6}{fa[fam]['accuracy']:>8.3f}{fm[fam]['accuracy']:>12.3f}"
              f"{fa[fam]['false_positives']:>5}/{fm[fam]['false_positives']}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--math-verify-child"]:
        _math_verify_child()
    else:
        parser = argparse.ArgumentParser(prog="apsgen bench verify")
        add_arguments(parser)
        sys.exit(run(parser.parse_args()))
