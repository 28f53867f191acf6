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
the item (`answer` or `gold_answer`, when a user adds it), else from the source datasets given with
`--answers` (joined by the problem's text, whitespace and case aside: GSM8K's test split covers
every GSM8K item, MATH500 112 of the 1,000 MATH items), else from the final `\\boxed{}` of an item of
the same problem whose `final_answer_correct` is true. Items with none are reported and left out;
a subset whose erroneous items are mostly left out gets no F1 (an F1 over the few left would be a
different benchmark) unless `allow_partial` asks for one, and says how many were scored.

`evaluate_prm` scores a trained PRM on the same files the way ProcessBench scores PRMs (see
`apsgen.prm.score` for the layouts): a probability of "correct" per step, and the first step under
the threshold is the predicted error (-1 when none is). ProcessBench's own script for TRL-trained
PRMs takes the argmax of the two labels, which is the threshold 0.5; `threshold="auto"` instead
picks the threshold with the best F1 on the first file and applies it to all of them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apsgen.config import JobSpec
from apsgen.data import given_steps
from apsgen.problem import Problem, join_steps, normalise_text, problem_id
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
    by_text: bool = False  # the located first error was settled by a step check, not by rollouts


@dataclass
class SubsetF1:
    """One file's figures as ProcessBench gives them, for annotate's labels and for a PRM alike."""

    name: str
    n_items: int
    n_erroneous: int
    n_correct: int
    acc_erroneous: float
    acc_correct: float
    f1: float | None  # None: no figure (withheld, or nothing scored)


@dataclass
class SubsetScore(SubsetF1):
    decided: float
    rollouts_per_item: float
    tokens_per_item: float
    n_without_answer: int = 0
    n_bad: int = 0
    n_located: int = 0  # items with a located first error
    n_by_text: int = 0  # ...settled by what the step's text shows (a false equation, a retraction)
    judge_agreement: float | None = None
    kept: float | None = None  # with a judge: share of items whose labels it agrees with
    f1_kept: float | None = None  # F1 over those items (what `export --consensus` would keep)
    coverage: Coverage | None = None
    withheld: str | None = None  # why no F1 is given for this subset

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["coverage"] = self.coverage.as_dict() if self.coverage else None
        return out


@dataclass
class Coverage:
    """How many of a subset's items have a gold answer, and where it came from."""

    erroneous: int
    erroneous_with_gold: int
    correct: int
    correct_with_gold: int
    from_item: int = 0
    from_answers: int = 0
    from_same_problem: int = 0

    @property
    def share_erroneous(self) -> float:
        return self.erroneous_with_gold / self.erroneous if self.erroneous else 1.0

    def render(self) -> str:
        return (
            f"gold answers for {self.erroneous_with_gold}/{self.erroneous} erroneous and "
            f"{self.correct_with_gold}/{self.correct} correct items (from --answers {self.from_answers}, "
            f"the item {self.from_item}, a correct solution of the same problem {self.from_same_problem})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "share_erroneous": self.share_erroneous}


def _mean_f1(subsets: Sequence[SubsetF1]) -> float | None:
    scored = [s.f1 for s in subsets if s.f1 is not None]
    return sum(scored) / len(scored) if scored else None


def _mean_line(subsets: Sequence[SubsetF1], elapsed_s: float) -> str:
    mean = _mean_f1(subsets)
    scored = sum(s.f1 is not None for s in subsets)
    held = len(subsets) - scored
    text = f"{mean:.3f} over {scored} file(s)" if mean is not None else "none (no file scored)"
    return f"{'mean F1':<22} {text}{f'; {held} withheld' if held else ''}; {elapsed_s:.1f} s"


@dataclass
class EvalReport:
    subsets: list[SubsetScore] = field(default_factory=list)
    elapsed_s: float = 0.0
    policy: str = ""

    @property
    def mean_f1(self) -> float | None:
        """The mean F1 over the files that got one (None when none did)."""
        return _mean_f1(self.subsets)

    def render(self) -> str:
        head = (
            f"{'subset':<22} {'items':>5} {'err':>4} {'ok':>4} {'acc err':>8} {'acc ok':>7} {'F1':>6} "
            f"{'decided':>8} {'rollouts/item':>13} {'tokens/item':>11}"
        )
        lines = [f"ProcessBench with apsgen annotate (policy {self.policy})", head, "-" * len(head)]
        for s in self.subsets:
            if s.withheld is not None:
                lines.append(f"{s.name:<22} F1 withheld: {s.withheld}")
                continue
            lines.append(
                f"{s.name:<22} {s.n_items:>5} {s.n_erroneous:>4} {s.n_correct:>4} {s.acc_erroneous:>8.3f} "
                f"{s.acc_correct:>7.3f} {s.f1 or 0.0:>6.3f} {s.decided:>8.3f} {s.rollouts_per_item:>13.1f} "
                f"{s.tokens_per_item:>11.0f}"
            )
            notes = []
            if s.coverage is not None and s.n_without_answer:
                notes.append(f"partial: {s.coverage.render()}")
            elif s.n_without_answer:
                notes.append(f"{s.n_without_answer} items without a gold answer left out")
            if s.n_bad:
                notes.append(f"{s.n_bad} bad items left out")
            if s.n_located:
                notes.append(f"text checks settled {s.n_by_text} of {s.n_located} located first errors")
            if s.judge_agreement is not None:
                notes.append(f"judge agrees on {s.judge_agreement:.3f} of judged items")
            if s.kept is not None and s.f1_kept is not None:
                notes.append(f"consensus keeps {s.kept:.3f} of items, F1 on them {s.f1_kept:.3f}")
            if notes:
                lines.append(f"{'':<22} ({'; '.join(notes)})")
        lines.append(_mean_line(self.subsets, self.elapsed_s))
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "mean_f1": self.mean_f1, "elapsed_s": self.elapsed_s,
                "subsets": [s.as_dict() for s in self.subsets]}


def _item(obj: Any, where: str) -> tuple[Item | None, str | None]:
    if not isinstance(obj, dict):
        return None, f"{where}: expected an object, got {type(obj).__name__}"
    if obj.get("id") is not None:
        where = f"{where} (id {str(obj['id'])[:80]!r})"
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


def load_items(path: str | Path, strict: bool = False) -> tuple[list[Item], list[str]]:
    """The items of one ProcessBench file and the reasons bad items were left out (`strict`: the
    first bad item is refused instead, naming the file, the item and the field)."""
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
        if item is None and strict:
            raise ProcessBenchError(why or f"{p.name} item {i}: unreadable")
        if item is None:
            bad.append(why or "")
        else:
            items.append(item)
    return items, bad


@dataclass(frozen=True)
class AnswerSource:
    """A dataset of (question, gold answer) rows to join ProcessBench items to by problem text."""

    path: str  # a local .jsonl/.json/.parquet/.csv file or a Hub dataset name
    question_column: str | None = None  # None: `question`, else `problem`
    answer_column: str | None = None  # None: `answer`, else `final_answer`, else `solution`
    split: str = "test"
    name: str | None = None  # Hub config name (e.g. "main" for openai/gsm8k)


def _pick(columns: list[str], given: str | None, candidates: tuple[str, ...], what: str, source: str) -> str:
    if given is not None:
        if given not in columns:
            raise ProcessBenchError(f"--answers {source!r}: no {what} column {given!r} (it has {', '.join(columns)})")
        return given
    for c in candidates:
        if c in columns:
            return c
    raise ProcessBenchError(
        f"--answers {source!r}: no {what} column among {', '.join(candidates)} (it has {', '.join(columns)}); "
        "name it with --answers-columns QUESTION,ANSWER"
    )


def load_answers(sources: list[AnswerSource]) -> dict[str, str]:
    """Normalised problem text -> gold answer, from every source (the first source to give a problem wins).
    Answers are read as apsgen reads a dataset's: a bare answer, GSM8K's `#### 42`, or a `\\boxed{}`."""
    from apsgen.config import DatasetSpec
    from apsgen.data import DatasetError, gold_answer, load_rows

    known: dict[str, str] = {}
    for src in sources:
        try:
            rows = load_rows(DatasetSpec(path=src.path, name=src.name, split=src.split))
        except DatasetError as e:
            raise ProcessBenchError(f"--answers: {e}") from None
        q = _pick(rows.column_names, src.question_column, ("question", "problem"), "question", src.path)
        a = _pick(rows.column_names, src.answer_column, ("answer", "final_answer", "solution"), "answer", src.path)
        added = unreadable = 0
        for question, answer in zip(rows[q], rows[a]):
            gold = gold_answer(answer, "auto") if isinstance(question, str) else None
            if gold is None:
                unreadable += 1
                continue
            key = normalise_text(question)
            if key not in known:
                known[key] = gold
                added += 1
        log.info("--answers %s: %d questions with a gold answer (%d rows without one)", src.path, added, unreadable)
    return known


def select_items(items: list[Item], limit: int | None = None, sample: int | None = None, seed: int = 0) -> list[Item]:
    """`limit`: the first N items. `sample`: N items drawn by a seeded hash of their ids, erroneous and
    correct ones in the file's proportions (ProcessBench's files list every erroneous item first, so
    the first N are all erroneous and give an F1 of 0). The sample does not depend on file order."""
    import hashlib

    if sample is None:
        return items[:limit] if limit is not None else items
    if sample >= len(items):
        return items
    rank = {it.id: hashlib.sha256(f"{seed}:{it.id}".encode()).hexdigest() for it in items}
    err = sorted((it for it in items if it.label != -1), key=lambda it: rank[it.id])
    ok = sorted((it for it in items if it.label == -1), key=lambda it: rank[it.id])
    n_err = min(len(err), round(sample * len(err) / len(items)))
    n_ok = min(len(ok), sample - n_err)
    chosen = {it.id for it in err[:n_err] + ok[:n_ok]}
    return [it for it in items if it.id in chosen]


def with_gold_answers(
    items: list[Item], answers: dict[str, str] | None = None
) -> tuple[list[Item], list[Item], Coverage]:
    """(items with a gold answer, items without one, the coverage). An item's own answer wins; then
    `answers` (normalised problem text -> answer, from `load_answers`); then the final boxed answer of
    a solution to the same problem marked final_answer_correct."""
    answers = answers or {}
    siblings: dict[str, str] = {}
    for it in items:
        if it.final_answer_correct and it.answer is None:
            boxed = last_boxed(it.steps[-1]) or last_boxed("\n\n".join(it.steps))
            if boxed:
                siblings.setdefault(normalise_text(it.problem), boxed)
    cov = Coverage(erroneous=sum(i.label != -1 for i in items), erroneous_with_gold=0,
                   correct=sum(i.label == -1 for i in items), correct_with_gold=0)
    with_answer, without = [], []
    for it in items:
        key = normalise_text(it.problem)
        if it.answer:
            answer, cov.from_item = it.answer, cov.from_item + 1
        elif key in answers:
            answer, cov.from_answers = answers[key], cov.from_answers + 1
        elif key in siblings:
            answer, cov.from_same_problem = siblings[key], cov.from_same_problem + 1
        else:
            without.append(it)
            continue
        with_answer.append(Item(**{**it.__dict__, "answer": answer}))
        if it.label == -1:
            cov.correct_with_gold += 1
        else:
            cov.erroneous_with_gold += 1
    return with_answer, without, cov


def to_problem(item: Item, subset: str) -> Problem:
    assert item.answer is not None
    text, _ = join_steps(item.steps)
    return Problem(
        id=problem_id(item.problem, item.answer, text), question=item.problem, answer=item.answer,
        dataset=subset, row=-1, steps=item.steps,
    )


def settled_by_text(result: ProblemResult | None) -> bool:
    """The located first error's verdict came from its text (a false equation, a retraction)."""
    if result is None:
        return False
    firsts = [s for s in result.steps if s.is_first_error]
    return bool(firsts) and min(firsts, key=lambda s: s.step_index).verdict_basis in ("arithmetic", "retraction")


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
    return acc_err, acc_ok, harmonic_f1(acc_err, acc_ok)


def harmonic_f1(acc_erroneous: float, acc_correct: float) -> float:
    """ProcessBench's F1: the harmonic mean of the two accuracies (0 where both are 0)."""
    total = acc_erroneous + acc_correct
    return 2 * acc_erroneous * acc_correct / total if total > 0 else 0.0


def score(
    name: str, preds: list[Prediction], *, n_without_answer: int = 0, n_bad: int = 0, coverage: Coverage | None = None
) -> SubsetScore:
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
        n_located=sum(p.located is not None and p.located >= 0 for p in preds),
        n_by_text=sum(p.by_text for p in preds),
        judge_agreement=sum(judged) / len(judged) if judged else None,
        kept=len(kept) / n if judged else None,
        f1_kept=accuracies(kept)[2] if judged else None,
        coverage=coverage,
    )


def _judge_agrees(result: ProblemResult | None) -> bool | None:
    if result is None or not result.n_judged_paths:
        return None
    return result.n_consensus_paths == result.n_judged_paths


async def annotate_items(
    problems: list[Problem], spec: JobSpec, *, concurrency: int, progress: Any = None
) -> list[ProblemResult | None]:
    """Label every problem with annotate mode in this process (`apsgen.pipeline.label_locally`):
    one policy, verifier and judge, calibrated on a seeded sample of the items as a job is."""
    from apsgen.judge import make_judge
    from apsgen.pipeline import Labeller, label_locally
    from apsgen.policy.base import Sampling
    from apsgen.policy.factory import make_policy
    from apsgen.verify import Verifier

    policy = make_policy(spec.policy, seed=spec.seed)
    verifier = Verifier.from_settings(spec.verify)
    judge = make_judge(spec.judge, spec.policy, policy=policy, seed=spec.seed) if spec.judge is not None else None
    s = spec.sampling
    sampling = Sampling(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, stop=tuple(s.stop))

    def failed(problem: Problem, e: Exception) -> None:  # one item's failure is a miss, not the end of the eval
        log.warning("item %s failed: %s", problem.id, e)

    try:
        start = getattr(policy, "start", None)
        if start is not None:
            await start()
        run = await label_locally(problems, Labeller(policy, verifier, sampling, spec.seed, judge), spec.labelling(),
                                  concurrency=concurrency, on_error=failed,
                                  on_done=(lambda p, r: progress()) if progress is not None else None)
        if run.calibration is not None:
            log.info("calibration: %s", run.calibration.render())
        return run.results
    finally:
        if judge is not None:
            await judge.close()
        await policy.close()
        verifier.close()


def coverage_table(
    files: list[str], answers: list[AnswerSource] | None = None, limit: int | None = None,
    sample: int | None = None, sample_seed: int = 0,
) -> str:
    """Each file's gold-answer coverage, as `evaluate` would find it, without running anything."""
    joined = load_answers(answers) if answers else {}
    head = f"{'subset':<22} {'erroneous':>14} {'correct':>14} {'from --answers':>14} {'item':>5} {'same problem':>12}  F1"
    lines = ["gold answers per subset (annotate's rollouts need one; a PRM does not)", head, "-" * len(head)]
    for f in files:
        items = load_items(f)[0]
        cov = with_gold_answers(select_items(items, limit, sample, sample_seed), joined)[2]
        lines.append(
            f"{Path(f).stem:<22} {f'{cov.erroneous_with_gold}/{cov.erroneous}':>14} "
            f"{f'{cov.correct_with_gold}/{cov.correct}':>14} {cov.from_answers:>14} {cov.from_item:>5} "
            f"{cov.from_same_problem:>12}  {'withheld' if withheld_reason(cov) else 'given'}"
        )
    return "\n".join(lines)


# A subset whose erroneous items have a gold answer less often than this gets no F1 unless asked.
MIN_ERRONEOUS_COVERAGE = 0.5


def withheld_reason(cov: Coverage) -> str | None:
    if cov.share_erroneous >= MIN_ERRONEOUS_COVERAGE:
        return None
    return (
        f"{cov.erroneous_with_gold} of {cov.erroneous} erroneous items have a gold answer; join answers from the "
        "source dataset (--answers FILE_OR_HUB_NAME) or pass --allow-partial to score the "
        f"{cov.erroneous_with_gold + cov.correct_with_gold} items that have one"
    )


def evaluate(
    files: list[str],
    spec: JobSpec,
    *,
    concurrency: int = 16,
    limit: int | None = None,
    sample: int | None = None,
    sample_seed: int = 0,
    progress: Any = None,
    answers: list[AnswerSource] | None = None,
    allow_partial: bool = False,
) -> EvalReport:
    """Score apsgen's annotate mode on each ProcessBench file (one subset each)."""
    if spec.search.mode != "annotate":
        spec = spec.model_copy(update={"search": spec.search.model_copy(update={"mode": "annotate"})})
    t0 = time.perf_counter()
    joined = load_answers(answers) if answers else {}
    loaded = []
    for f in files:
        items, bad = load_items(f)
        for why in bad[:10]:
            log.warning("left out: %s", why)
        items = select_items(items, limit, sample, sample_seed)
        usable, without, cov = with_gold_answers(items, joined)
        withheld = None if allow_partial else withheld_reason(cov)
        log.info("%s: %s", Path(f).stem, cov.render())
        loaded.append((Path(f).stem, [] if withheld else usable, without, bad, cov, withheld))
    problems = [to_problem(it, name) for name, usable, *_ in loaded for it in usable]
    results = asyncio.run(annotate_items(problems, spec, concurrency=concurrency, progress=progress))
    by_id: dict[str, list[ProblemResult | None]] = defaultdict(list)
    for problem, result in zip(problems, results, strict=True):
        by_id[problem.id].append(result)
    report = EvalReport(policy=f"{spec.policy.backend}:{spec.policy.model}" if spec.policy.backend != "simulated"
                        else "simulated")
    for name, usable, without, bad, cov, withheld in loaded:
        if withheld is not None:
            report.subsets.append(SubsetScore(
                name=name, n_items=0, n_erroneous=0, n_correct=0, acc_erroneous=0.0, acc_correct=0.0, f1=None,
                decided=0.0, rollouts_per_item=0.0, tokens_per_item=0.0, n_without_answer=len(without),
                n_bad=len(bad), coverage=cov, withheld=withheld))
            continue
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
                by_text=settled_by_text(result),
            ))
        report.subsets.append(score(name, preds, n_without_answer=len(without), n_bad=len(bad), coverage=cov))
    report.elapsed_s = time.perf_counter() - t0
    return report
