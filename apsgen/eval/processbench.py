"""`apsgen eval processbench`: how close apsgen's first errors are to human ones.

ProcessBench (Zheng et al. 2024, arXiv 2412.06559) gives solutions split into steps with the
0-based index of the first wrong step a human expert found (-1: none). Its files are JSON lists (or
JSON lines) of objects with `id`, `generator`, `problem`, `steps` (list of strings),
`final_answer_correct` and `label`, one file per subset (gsm8k, math, olympiadbench, omnimath).

Each item is labelled by `search.mode: annotate` with the job's policy as the completer, and its
located first wrong step is compared with the human label:

- accuracy on erroneous items: located step == label;
- accuracy on correct items: the search decided there is no wrong step;
- F1: their harmonic mean, ProcessBench's figure; the mean of F1 over the files given.

An item the search left without a decision (a probe undecided within `k_max`, a completer that
never solves the question, the rollout budget, a failure) counts as a miss in both accuracies:
"nothing located" is a claim the search has to earn. `decided` reports the share it earned.

ProcessBench items carry no gold answer, and the completer's rollouts need one. It is taken from
the item (`answer` or `gold_answer`, when a user adds it), else from the final `\\boxed{}` of an item
of the same problem whose `final_answer_correct` is true. Items with neither are reported and left
out of the scores.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apsgen.config import JobSpec, SearchSpec
from apsgen.data import given_steps, problem_id
from apsgen.problem import join_steps
from apsgen.problem import Problem
from apsgen.search.result import ProblemResult
from apsgen.verify.extract import last_boxed

log = logging.getLogger(__name__)


class ProcessBenchError(ValueError):
    """A file that cannot be read as ProcessBench items at all."""


@dataclass(frozen=True)
class Item:
    id: str
    problem: str
    steps: tuple[str, ...]
    label: int  # 0-based first wrong step, -1: none
    final_answer_correct: bool | None
    generator: str = ""
    answer: str | None = None


@dataclass
class Prediction:
    item: Item
    located: int | None  # 0-based step, -1: decided none, None: no decision
    rollouts: int = 0
    generated_tokens: int = 0
    judge_agrees: bool | None = None
    why: str = ""  # stop reason or error


@dataclass
class SubsetScore:
    name: str
    n_items: int
    n_erroneous: int
    n_correct: int
    acc_erroneous: float
    acc_correct: float
    f1: float
    decided: float
    rollouts_per_item: float
    tokens_per_item: float
    n_without_answer: int = 0
    n_bad: int = 0
    judge_agreement: float | None = None
    kept: float | None = None  # with a judge: share of items whose labels it agrees with
    f1_kept: float | None = None  # F1 over those items (what `export --consensus` would keep)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class EvalReport:
    subsets: list[SubsetScore] = field(default_factory=list)
    elapsed_s: float = 0.0
    policy: str = ""

    @property
    def mean_f1(self) -> float:
        return sum(s.f1 for s in self.subsets) / len(self.subsets) if self.subsets else 0.0

    def render(self) -> str:
        head = (
            f"{'subset':<22} {'items':>5} {'err':>4} {'ok':>4} {'acc err':>8} {'acc ok':>7} {'F1':>6} "
            f"{'decided':>8} {'rollouts/item':>13} {'tokens/item':>11}"
        )
        lines = [f"ProcessBench with apsgen annotate (policy {self.policy})", head, "-" * len(head)]
        for s in self.subsets:
            lines.append(
                f"{s.name:<22} {s.n_items:>5} {s.n_erroneous:>4} {s.n_correct:>4} {s.acc_erroneous:>8.3f} "
                f"{s.acc_correct:>7.3f} {s.f1:>6.3f} {s.decided:>8.3f} {s.rollouts_per_item:>13.1f} "
                f"{s.tokens_per_item:>11.0f}"
            )
            notes = []
            if s.n_without_answer:
                notes.append(f"{s.n_without_answer} items without a gold answer left out")
            if s.n_bad:
                notes.append(f"{s.n_bad} bad items left out")
            if s.judge_agreement is not None:
                notes.append(f"judge agrees on {s.judge_agreement:.3f} of judged items")
            if s.kept is not None and s.f1_kept is not None:
                notes.append(f"consensus keeps {s.kept:.3f} of items, F1 on them {s.f1_kept:.3f}")
            if notes:
                lines.append(f"{'':<22} ({'; '.join(notes)})")
        lines.append(f"{'mean F1':<22} {self.mean_f1:.3f} over {len(self.subsets)} file(s); {self.elapsed_s:.1f} s")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "mean_f1": self.mean_f1, "elapsed_s": self.elapsed_s,
                "subsets": [s.as_dict() for s in self.subsets]}


def _item(obj: Any, where: str) -> tuple[Item | None, str | None]:
    if not isinstance(obj, dict):
        return None, f"{where}: expected an object, got {type(obj).__name__}"
    problem = obj.get("problem")
    if not isinstance(problem, str) or not problem.strip():
        return None, f"{where}: empty or missing 'problem'"
    steps, why = given_steps(obj.get("steps"))
    if steps is None:
        return None, f"{where}: 'steps': {why}"
    label = obj.get("label")
    if isinstance(label, bool) or not isinstance(label, int) or not -1 <= label < len(steps):
        return None, f"{where}: 'label' {label!r} is not -1 or a step index below {len(steps)}"
    fac = obj.get("final_answer_correct")
    answer = obj.get("answer", obj.get("gold_answer"))
    return Item(
        id=str(obj.get("id", where)),
        problem=problem,
        steps=steps,
        label=label,
        final_answer_correct=fac if isinstance(fac, bool) else None,
        generator=str(obj.get("generator", "")),
        answer=str(answer).strip() if answer is not None and str(answer).strip() else None,
    ), None


def load_items(path: str | Path) -> tuple[list[Item], list[str]]:
    """The items of one ProcessBench file and the reasons bad items were left out."""
    p = Path(path)
    if not p.is_file():
        raise ProcessBenchError(f"ProcessBench file {str(path)!r} not found")
    text = p.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
        objs = data if isinstance(data, list) else None
        if objs is None:
            raise ProcessBenchError(f"{path}: expected a JSON list of items, got {type(data).__name__}")
    except json.JSONDecodeError:
        objs = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                objs.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ProcessBenchError(f"{path} line {n}: neither a JSON list nor JSON lines ({e})") from None
    items, bad = [], []
    for i, obj in enumerate(objs):
        item, why = _item(obj, f"{p.name} item {i}")
        if item is None:
            bad.append(why or "")
        else:
            items.append(item)
    return items, bad


def with_gold_answers(items: list[Item]) -> tuple[list[Item], list[Item]]:
    """(items with a gold answer, items without one). An item's own answer wins; otherwise the final
    boxed answer of a solution to the same problem marked final_answer_correct."""
    known: dict[str, str] = {}
    for it in items:
        if it.final_answer_correct and it.answer is None:
            boxed = last_boxed(it.steps[-1]) or last_boxed("\n\n".join(it.steps))
            if boxed:
                known.setdefault(" ".join(it.problem.split()), boxed)
    with_answer, without = [], []
    for it in items:
        answer = it.answer or known.get(" ".join(it.problem.split()))
        if answer:
            with_answer.append(Item(**{**it.__dict__, "answer": answer}))
        else:
            without.append(it)
    return with_answer, without


def to_problem(item: Item, subset: str) -> Problem:
    assert item.answer is not None
    text, _ = join_steps(item.steps)
    return Problem(
        id=problem_id(item.problem, item.answer, text), question=item.problem, answer=item.answer,
        dataset=subset, row=-1, steps=item.steps,
    )


def located_step(result: ProblemResult | None) -> int | None:
    """The search's claim: a 0-based first wrong step, -1 for none, None when it made none."""
    if result is None or result.status != "searched":
        return None
    first = [s.step_index for s in result.steps if s.is_first_error]
    if first:
        return min(first)
    return -1 if result.stop_reason == "no_error" else None


def accuracies(preds: list[Prediction]) -> tuple[float, float, float]:
    """(accuracy on erroneous items, accuracy on correct items, F1), ProcessBench's way."""
    err = [p for p in preds if p.item.label != -1]
    ok = [p for p in preds if p.item.label == -1]
    acc_err = sum(p.located == p.item.label for p in err) / len(err) if err else 0.0
    acc_ok = sum(p.located == -1 for p in ok) / len(ok) if ok else 0.0
    f1 = 2 * acc_err * acc_ok / (acc_err + acc_ok) if acc_err + acc_ok > 0 else 0.0
    return acc_err, acc_ok, f1


def score(name: str, preds: list[Prediction], *, n_without_answer: int = 0, n_bad: int = 0) -> SubsetScore:
    err = [p for p in preds if p.item.label != -1]
    ok = [p for p in preds if p.item.label == -1]
    acc_err, acc_ok, f1 = accuracies(preds)
    judged = [p.judge_agrees for p in preds if p.judge_agrees is not None]
    kept = [p for p in preds if p.judge_agrees]
    n = max(1, len(preds))
    return SubsetScore(
        name=name,
        n_items=len(preds),
        n_erroneous=len(err),
        n_correct=len(ok),
        acc_erroneous=acc_err,
        acc_correct=acc_ok,
        f1=f1,
        decided=sum(p.located is not None for p in preds) / n,
        rollouts_per_item=sum(p.rollouts for p in preds) / n,
        tokens_per_item=sum(p.generated_tokens for p in preds) / n,
        n_without_answer=n_without_answer,
        n_bad=n_bad,
        judge_agreement=sum(judged) / len(judged) if judged else None,
        kept=len(kept) / n if judged else None,
        f1_kept=accuracies(kept)[2] if judged else None,
    )


def _judge_agrees(result: ProblemResult | None) -> bool | None:
    if result is None or not result.n_judged_paths:
        return None
    return result.n_consensus_paths == result.n_judged_paths


async def annotate_items(
    problems: list[Problem], spec: JobSpec, *, concurrency: int, progress: Any = None
) -> list[ProblemResult | None]:
    """Run the annotate search on every problem with one policy, verifier and judge in this process."""
    from apsgen.judge import make_judge
    from apsgen.judge.consensus import judge_result
    from apsgen.policy.base import Sampling
    from apsgen.policy.factory import make_policy
    from apsgen.search import run_search
    from apsgen.search.calibration import search_calibrated
    from apsgen.verify import Verifier

    policy = make_policy(spec.policy, seed=spec.seed)
    v = spec.verify
    verifier = Verifier.from_settings(v)
    judge = make_judge(spec.judge, spec.policy, policy=policy, seed=spec.seed) if spec.judge is not None else None
    s = spec.sampling
    sampling = Sampling(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, stop=tuple(s.stop))
    gate = asyncio.Semaphore(concurrency)

    async def one(problem: Problem, search: SearchSpec, calibration: Any, calibrating: bool) -> ProblemResult | None:
        async with gate:
            try:
                result = await run_search(problem, policy, verifier, search, sampling, seed=spec.seed,
                                          calibration=calibration, calibrating=calibrating)
                return result if calibrating else await judge_result(judge, problem, result)
            except Exception as e:  # noqa: BLE001 - one item's failure is a miss, not the end of the eval
                log.warning("item %s failed: %s", problem.id, e)
                return None
            finally:
                if progress is not None and not calibrating:
                    progress()

    try:
        start = getattr(policy, "start", None)
        if start is not None:
            await start()
        # As a job runs: calibrate on a seeded sample of the items, then label them all against it.
        results, calibration, _ = await search_calibrated(problems, spec.search, spec.seed, one)
        if calibration is not None:
            log.info("calibration: %s", calibration.render())
        return results
    finally:
        if judge is not None:
            await judge.close()
        await policy.close()
        verifier.close()


def evaluate(
    files: list[str], spec: JobSpec, *, concurrency: int = 16, limit: int | None = None, progress: Any = None
) -> EvalReport:
    """Score apsgen's annotate mode on each ProcessBench file (one subset each)."""
    if spec.search.mode != "annotate":
        spec = spec.model_copy(update={"search": spec.search.model_copy(update={"mode": "annotate"})})
    t0 = time.perf_counter()
    loaded = []
    for f in files:
        items, bad = load_items(f)
        for why in bad[:10]:
            log.warning("left out: %s", why)
        if limit is not None:
            items = items[:limit]
        usable, without = with_gold_answers(items)
        loaded.append((Path(f).stem, usable, without, bad))
    problems = [to_problem(it, name) for name, usable, _, _ in loaded for it in usable]
    results = asyncio.run(annotate_items(problems, spec, concurrency=concurrency, progress=progress))
    by_id: dict[str, list[ProblemResult | None]] = defaultdict(list)
    for problem, result in zip(problems, results, strict=True):
        by_id[problem.id].append(result)
    report = EvalReport(policy=f"{spec.policy.backend}:{spec.policy.model}" if spec.policy.backend != "simulated"
                        else "simulated")
    for name, usable, without, bad in loaded:
        preds = []
        for it in usable:
            result = by_id[to_problem(it, name).id][0]
            preds.append(Prediction(
                item=it,
                located=located_step(result),
                rollouts=result.n_rollouts if result else 0,
                generated_tokens=result.generated_tokens if result else 0,
                judge_agrees=_judge_agrees(result),
                why=(result.stop_reason or result.status) if result else "failed",
            ))
        report.subsets.append(score(name, preds, n_without_answer=len(without), n_bad=len(bad)))
    report.elapsed_s = time.perf_counter() - t0
    return report
