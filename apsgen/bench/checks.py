"""`apsgen bench checks FILE...`: every check that reads a step's text, against human labels.

The step checks (`apsgen.label.text`) settle labels without rollouts, and nothing can
overturn them: a false "certain wrong" stops a binary search at a right step and feeds the
own-recovery probes a prefix that is in fact right. So each is measured where humans have read
real model text: ProcessBench-format files (Zheng et al. 2024; one subset per file), whose items
give the 0-based index of the first wrong step a human expert found (-1: none).

- A **wrong** claim (false equation, retraction, and the two together as the search takes them)
  at step i says the prefix through step i is wrong. Per solution its first claim is scored: right
  when the humans' first error is at step i ("at") or before it ("after"), false when they call the
  solution correct or put the first error later. Later claims on the same solution follow from the
  first. "Caught" is the share of erroneous solutions with a right claim.
- The **restatement** claim at step i says step i cannot be the first error. Steps up to the
  humans' first error (every step of a correct solution) are scored; a claim is false where it
  falls on the humans' first error ("hides" it).

Precision comes with a 95% Wilson interval. Some false claims are right as written and the humans
passed over the slip, so expect a ceiling a little under 1.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apsgen.eval.processbench import Item, ProcessBenchError, load_items
from apsgen.label.text import false_equation, restates_question, retraction


def _certain_wrong(step: str, question: str) -> str | None:
    return false_equation(step) or retraction(step)


# name -> (what it reads, the claim it makes)
WRONG_CHECKS: dict[str, Callable[[str, str], str | None]] = {
    "certain wrong": _certain_wrong,  # what the search takes as certain: either of the two below
    "false equation": lambda step, question: false_equation(step),
    "retraction": lambda step, question: retraction(step),
}


@dataclass
class Claim:
    subset: str
    item_id: str
    step: int
    label: int
    fired: str  # the text that fired
    step_text: str


@dataclass
class Tally:
    solutions: int = 0
    erroneous: int = 0
    claims: int = 0
    at: int = 0  # right, at the humans' first error
    after: int = 0  # right, after it
    false: list[Claim] = field(default_factory=list)

    @property
    def right(self) -> int:
        return self.at + self.after

    def add(self, other: Tally) -> None:
        self.solutions += other.solutions
        self.erroneous += other.erroneous
        self.claims += other.claims
        self.at += other.at
        self.after += other.after
        self.false += other.false


def wilson(right: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a proportion (None for no trials)."""
    if n == 0:
        return None
    p = right / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def score_wrong_check(check: Callable[[str, str], str | None], items: list[Item], subset: str) -> Tally:
    """The first claim per solution of a check that says a prefix is wrong (see the module doc)."""
    t = Tally(solutions=len(items), erroneous=sum(it.label != -1 for it in items))
    for it in items:
        for i, step in enumerate(it.steps):
            fired = check(step, it.problem)
            if fired is None:
                continue
            t.claims += 1
            if it.label == i:
                t.at += 1
            elif it.label != -1 and it.label < i:
                t.after += 1
            else:
                t.false.append(Claim(subset, it.id, i, it.label, fired, step))
            break
    return t


def score_restatement(items: list[Item], subset: str) -> Tally:
    """Restatement claims on the steps the humans' reading judges (up to the first error): false
    where the claim falls on the first error ("at" counts nothing here: a restatement is never the
    error, so every right claim is "after" nothing; they are counted as right before it)."""
    t = Tally(solutions=len(items), erroneous=sum(it.label != -1 for it in items))
    for it in items:
        last = len(it.steps) - 1 if it.label == -1 else it.label
        for i, step in enumerate(it.steps[: last + 1]):
            if not restates_question(it.problem, step):
                continue
            t.claims += 1
            if i == it.label:
                t.false.append(Claim(subset, it.id, i, it.label, "restatement", step))
            else:
                t.after += 1
    return t


def measure(files: list[str]) -> dict[str, dict[str, Tally]]:
    """check -> subset -> tally (and "all" -> the subsets together)."""
    out: dict[str, dict[str, Tally]] = {name: {} for name in (*WRONG_CHECKS, "restatement")}
    for f in files:
        try:
            items, _ = load_items(f, strict=True)
        except ProcessBenchError as e:
            raise SystemExit(f"apsgen bench checks: {e}") from None
        subset = Path(f).stem
        for name, check in WRONG_CHECKS.items():
            out[name][subset] = score_wrong_check(check, items, subset)
        out["restatement"][subset] = score_restatement(items, subset)
    for by_subset in out.values():
        total = Tally()
        for t in list(by_subset.values()):
            total.add(t)
        by_subset["all"] = total
    return out


def _figures(t: Tally, restatement: bool) -> dict[str, Any]:
    interval = wilson(t.right, t.claims)
    out: dict[str, Any] = {
        "solutions": t.solutions,
        "erroneous": t.erroneous,
        "claims": t.claims,
        "right": t.right,
        "false": len(t.false),
        "precision": t.right / t.claims if t.claims else None,
        "interval": [round(x, 4) for x in interval] if interval else None,
    }
    if restatement:
        out["hidden_first_errors"] = len(t.false)
    else:
        out.update(at=t.at, after=t.after, caught=t.right / t.erroneous if t.erroneous else None)
    return out


def report(measured: dict[str, dict[str, Tally]]) -> dict[str, Any]:
    return {name: {subset: _figures(t, name == "restatement") for subset, t in by.items()}
            for name, by in measured.items()}


def _excerpt(text: str, fired: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    probe = " ".join(fired.split())[:20]
    at = flat.find(probe) if probe else -1
    start = max(0, at - width // 2) if at >= 0 else 0
    cut = flat[start : start + width]
    return ("..." if start else "") + cut + ("..." if start + width < len(flat) else "")


def render(measured: dict[str, dict[str, Tally]], show_false: int) -> str:
    lines = ["apsgen bench checks: each text check against ProcessBench's human first-error labels",
             "wrong claims: the first per solution; right = the humans' first error at that step or before it; "
             "caught = erroneous solutions with a right claim"]
    head = (f"{'check':<15} {'subset':<14} {'items':>5} {'err':>5} {'claims':>6} {'at':>4} {'after':>5} "
            f"{'false':>5} {'precision':>9} {'95% interval':>13} {'caught':>6}")
    lines += [head, "-" * len(head)]
    for name in WRONG_CHECKS:
        for subset, t in measured[name].items():
            f = _figures(t, False)
            prec = "-" if f["precision"] is None else f"{f['precision']:.3f}"
            iv = "-" if f["interval"] is None else f"{f['interval'][0]:.3f}-{f['interval'][1]:.3f}"
            caught = "-" if f["caught"] is None else f"{f['caught']:.3f}"
            lines.append(f"{name:<15} {subset:<14} {t.solutions:>5} {t.erroneous:>5} {t.claims:>6} {t.at:>4} "
                         f"{t.after:>5} {len(t.false):>5} {prec:>9} {iv:>13} {caught:>6}")
    lines += ["", "restatement claims (a step that only repeats the question cannot be the first error), on the "
              "steps up to the humans' first error; false = it falls on that error and hides it"]
    head = f"{'check':<15} {'subset':<14} {'items':>5} {'err':>5} {'claims':>6} {'hides':>5} {'precision':>9} {'95% interval':>13}"
    lines += [head, "-" * len(head)]
    for subset, t in measured["restatement"].items():
        f = _figures(t, True)
        prec = "-" if f["precision"] is None else f"{f['precision']:.3f}"
        iv = "-" if f["interval"] is None else f"{f['interval'][0]:.3f}-{f['interval'][1]:.3f}"
        lines.append(f"{'restatement':<15} {subset:<14} {t.solutions:>5} {t.erroneous:>5} {t.claims:>6} "
                     f"{len(t.false):>5} {prec:>9} {iv:>13}")
    if show_false:
        for name, by in measured.items():
            false = by["all"].false
            if name == "certain wrong" or not false:
                continue  # its false claims are those of the two checks it joins
            lines += ["", f"false {name} claims ({min(show_false, len(false))} of {len(false)}):"]
            for c in false[:show_false]:
                human = "none" if c.label == -1 else f"step {c.label}"
                lines.append(f"  {c.subset} {c.item_id} step {c.step} (humans: {human}): {c.fired!r}")
                lines.append(f"      {_excerpt(c.step_text, c.fired)}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="ProcessBench-format files (JSON list or JSON lines: id, problem, steps, label), one subset each")
    parser.add_argument("--show-false", type=int, default=0, metavar="N",
                        help="list up to N false claims per check, with the text that fired")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def run(args: argparse.Namespace) -> int:
    measured = measure(args.files)
    if args.json:
        out = report(measured)
        if args.show_false:
            out["false_claims"] = {
                name: [c.__dict__ | {"step_text": _excerpt(c.step_text, c.fired)} for c in by["all"].false[: args.show_false]]
                for name, by in measured.items()
            }
        print(json.dumps(out, sort_keys=True))
    else:
        print(render(measured, args.show_false))
    return 0
