"""`apsgen eval processbench --prm MODEL`: a trained PRM scored on ProcessBench files, ProcessBench's way.

Each item's steps get a probability of "correct" from the PRM (`apsgen.prm.score`); the first step
under the threshold is the predicted first error, -1 when no step is under it. Accuracy on erroneous
items (predicted == label), on correct items (predicted -1), and their harmonic mean F1, per file,
as `apsgen.eval.processbench` computes them for annotate. The PRM needs no gold answer, so every
item is scored. An item longer than the model's context is counted and skipped with the reason,
never truncated into a score; so is an item the model fails on.

The threshold: 0.5 by default, the argmax of the two labels, which is what ProcessBench's script
for TRL-trained PRMs does. `auto` picks, from the first file's scores, the threshold with the best F1
(ties: the one nearest 0.5) and applies it to every file, so that file's F1 is fitted and the others
are not; the report says which file it was fitted on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apsgen.eval.processbench import (
    Item,
    Prediction,
    SubsetF1,
    _mean_f1,
    _mean_line,
    accuracies,
    harmonic_f1,
    load_items,
    select_items,
)

log = logging.getLogger(__name__)


@dataclass
class Scored:
    item: Item
    scores: list[float] | None  # None: skipped
    why: str = ""


@dataclass
class PRMSubset(SubsetF1):
    n_skipped: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    n_bad: int = 0
    mean_step_score: float | None = None
    s_per_item: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class PRMReport:
    model: str
    layout: str
    threshold: float
    threshold_fitted_on: str | None = None
    subsets: list[PRMSubset] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def mean_f1(self) -> float | None:
        return _mean_f1(self.subsets)

    def render(self) -> str:
        how = f"fitted on {self.threshold_fitted_on}" if self.threshold_fitted_on else "given"
        head = (f"{'subset':<22} {'items':>5} {'err':>4} {'ok':>4} {'acc err':>8} {'acc ok':>7} {'F1':>6} "
                f"{'skipped':>7} {'mean score':>10} {'s/item':>7}")
        lines = [f"ProcessBench with PRM {self.model} ({self.layout}; threshold {self.threshold:.3f}, {how})",
                 head, "-" * len(head)]
        for s in self.subsets:
            mean = f"{s.mean_step_score:.3f}" if s.mean_step_score is not None else "-"
            lines.append(
                f"{s.name:<22} {s.n_items:>5} {s.n_erroneous:>4} {s.n_correct:>4} {s.acc_erroneous:>8.3f} "
                f"{s.acc_correct:>7.3f} {s.f1 or 0.0:>6.3f} {s.n_skipped:>7} {mean:>10} {s.s_per_item:>7.2f}"
            )
            notes = [f"{n} skipped: {why}" for why, n in sorted(s.skipped.items())]
            if s.n_bad:
                notes.append(f"{s.n_bad} bad items left out")
            if notes:
                lines.append(f"{'':<22} ({'; '.join(notes)})")
        lines.append(_mean_line(self.subsets, self.elapsed_s))
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {"model": self.model, "layout": self.layout, "threshold": self.threshold,
                "threshold_fitted_on": self.threshold_fitted_on, "mean_f1": self.mean_f1,
                "elapsed_s": self.elapsed_s, "subsets": [s.as_dict() for s in self.subsets]}


def first_under(scores: list[float], threshold: float) -> int:
    """The predicted first wrong step: the first score under the threshold, -1 when none is."""
    for i, x in enumerate(scores):
        if x < threshold:
            return i
    return -1


def _predictions(scored: list[Scored], threshold: float) -> list[Prediction]:
    return [Prediction(item=s.item, located=first_under(s.scores, threshold)) for s in scored if s.scores is not None]


def fit_threshold(scored: list[Scored]) -> float:
    """The threshold with the best F1 on these items (ties: nearest 0.5), in O(n log n).

    An item is predicted right on an interval of thresholds: an erroneous item with label L when
    scores[L] < t <= min(scores[:L]); a correct item when t <= min(scores). Counting the intervals
    that hold each candidate (every distinct score, and just above it) gives F1 at every outcome."""
    from bisect import bisect_left

    intervals: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
    n = {True: 0, False: 0}
    candidates = {0.5}
    for s in scored:
        if not s.scores:
            continue
        erroneous = s.item.label != -1
        n[erroneous] += 1
        if erroneous:
            lo, hi = s.scores[s.item.label], min(s.scores[: s.item.label], default=2.0)
        else:
            lo, hi = -1.0, min(s.scores)
        if lo < hi:
            intervals[erroneous][0].append(lo)
            intervals[erroneous][1].append(hi)
        for x in s.scores:
            candidates.update((x, x + 1e-9))
    for los, his in intervals.values():
        los.sort()
        his.sort()

    def f1(t: float) -> float:
        acc = []
        for erroneous in (True, False):
            los, his = intervals[erroneous]
            acc.append((bisect_left(los, t) - bisect_left(his, t)) / n[erroneous] if n[erroneous] else 0.0)
        return harmonic_f1(acc[0], acc[1])

    usable = [t for t in candidates if 0.0 < t <= 1.0]
    return max(sorted(usable), key=lambda t: (round(f1(t), 12), -abs(t - 0.5)))


def score_items(prm: Any, items: list[Item], progress: Any = None) -> list[Scored]:
    from apsgen.prm.score import PRMError, TooLong

    out = []
    for it in items:
        try:
            out.append(Scored(it, prm.score(it.problem, list(it.steps))))
        except TooLong as e:
            out.append(Scored(it, None, f"longer than the model's context ({e.limit} tokens)"))
        except PRMError:
            raise
        except Exception as e:  # noqa: BLE001 - one item's failure is counted, not the end of the eval
            log.warning("item %s: the PRM failed: %s", it.id, e)
            out.append(Scored(it, None, f"the PRM failed ({type(e).__name__})"))
        if progress is not None:
            progress()
    return out


def subset_score(name: str, scored: list[Scored], threshold: float, n_bad: int, seconds: float) -> PRMSubset:
    preds = _predictions(scored, threshold)
    acc_err, acc_ok, f1 = accuracies(preds)
    skipped: dict[str, int] = {}
    for s in scored:
        if s.scores is None:
            skipped[s.why] = skipped.get(s.why, 0) + 1
    steps = [x for s in scored if s.scores for x in s.scores]
    return PRMSubset(
        name=name, n_items=len(preds), n_erroneous=sum(p.item.label != -1 for p in preds),
        n_correct=sum(p.item.label == -1 for p in preds), acc_erroneous=acc_err, acc_correct=acc_ok,
        f1=f1 if preds else None, n_skipped=sum(skipped.values()), skipped=skipped, n_bad=n_bad,
        mean_step_score=sum(steps) / len(steps) if steps else None, s_per_item=seconds / max(1, len(scored)),
    )


def evaluate_prm(
    files: list[str],
    model: str,
    *,
    threshold: float | str = 0.5,
    limit: int | None = None,
    sample: int | None = None,
    sample_seed: int = 0,
    separator: str | None = None,
    max_length: int | None = None,
    trust_remote_code: bool = False,
    device: str = "auto",
    progress: Any = None,
) -> PRMReport:
    """Score the PRM in folder `model` on each ProcessBench file (one subset each)."""
    from apsgen.prm.score import PRMError, load_prm
    from apsgen.prm.score import trained_separator

    if threshold != "auto" and not (isinstance(threshold, (int, float)) and 0.0 < float(threshold) < 1.0):
        raise PRMError(f"threshold {threshold!r}: expected a probability between 0 and 1, or auto")
    t0 = time.perf_counter()
    loaded = []
    for f in files:
        items, bad = load_items(f)
        for why in bad[:10]:
            log.warning("left out: %s", why)
        loaded.append((Path(f).stem, select_items(items, limit, sample, sample_seed), len(bad)))
    sep = separator if separator is not None else (trained_separator(model) or "\n")
    prm = load_prm(model, separator=sep, max_length=max_length, trust_remote_code=trust_remote_code, device=device)
    runs = []
    for name, items, n_bad in loaded:
        t = time.perf_counter()
        scored = score_items(prm, items, progress)
        runs.append((name, scored, n_bad, time.perf_counter() - t))
    fitted_on = None
    if threshold == "auto":
        fitted_on = runs[0][0] if runs else None
        value = fit_threshold(runs[0][1]) if runs else 0.5
    else:
        value = float(threshold)
    report = PRMReport(model=model, layout=prm.layout, threshold=value, threshold_fitted_on=fitted_on)
    report.subsets = [subset_score(name, scored, value, n_bad, secs) for name, scored, n_bad, secs in runs]
    report.elapsed_s = time.perf_counter() - t0
    return report
