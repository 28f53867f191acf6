"""Dataset statistics of a job's output: counts, skips by reason, MC histogram, label balance,
steps per path, cost per problem and verifier outcomes. Read from the shards and the manifest,
shard by shard; the step counts are column-wise (pyarrow.compute), the paths per tree."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from apsgen.io.export import iter_trees, step_shards
from apsgen.io.store import OutputStore
from apsgen.paths import solution_paths

HIST_BINS = 10
# Every outcome the verifier can give, in the order a reader scans them (apsgen.verify.answer_check).
OUTCOMES = ("correct", "wrong", "no_answer", "truncated", "timeout")


class StatsError(ValueError):
    pass


@dataclass
class Distribution:
    """Summary of a list of numbers (empty lists give zeros)."""

    n: int = 0
    mean: float = 0.0
    median: float = 0.0
    p90: float = 0.0
    max: float = 0.0

    @classmethod
    def of(cls, values: list[float]) -> Distribution:
        if not values:
            return cls()
        s = sorted(values)
        return cls(
            n=len(s),
            mean=round(statistics.fmean(s), 3),
            median=round(statistics.median(s), 3),
            p90=round(s[min(len(s) - 1, int(0.9 * len(s)))], 3),
            max=round(s[-1], 3),
        )


@dataclass
class DatasetStats:
    job: str
    fingerprint: str
    problems_loaded: int  # by the last run: what the source held after filtering
    problems_done: int
    searched: int
    skipped: dict[str, int]  # skip reason -> problems (screening)
    failed: int
    excluded: int  # contamination filter, last run that searched
    duplicates: int
    bad_rows: int
    steps: int
    unlabelled_steps: int  # MC null: not estimated (a state of the stored tree), or every rollout excluded
    positive_mc0: int  # MC > 0: the search's notion of a still-correct prefix
    negative_mc0: int
    positive_mc05: int  # MC > 0.5: MATH-APS's export label
    negative_mc05: int
    first_errors: int
    label_sources: dict[str, int]
    mc_histogram: list[int]  # HIST_BINS equal bins over [0, 1]
    mc_exact_zero: int
    mc_exact_one: int
    paths: int  # solution paths the path exports write, correct ones included
    correct_paths: int  # of those, correct sampled solutions (all steps good)
    steps_per_path: Distribution
    rollouts_per_problem: Distribution
    generated_tokens_per_problem: Distribution
    prompt_tokens_per_problem: Distribution
    rollouts: int
    generated_tokens: int
    prompt_tokens: int
    verifier_outcomes: dict[str, int] = field(default_factory=dict)
    verdicts: dict[str, int] = field(default_factory=dict)  # the label rule's: correct / wrong / undecided
    first_errors_by_step: dict[int, int] = field(default_factory=dict)  # step index -> first errors located
    judged_paths: int = 0  # labelled paths an LLM judge read (judge: in the job)
    consensus_paths: int = 0  # of those, where it named the located first wrong step (or none, with none)
    judge_unparseable: int = 0  # of those, replies without a verdict
    given_solutions: int = 0  # problems whose solution came from the dataset (search.mode annotate)
    stop_reasons: dict[str, int] = field(default_factory=dict)  # searched problems, by why their search stopped
    # Searched problems whose right answers were verified before any was stored as an all-good path,
    # because the chance that one came through a wrong step was above the rule's allgood_max_risk
    # (label_inputs["allgood"]); the paths so stored, and the right answers found to hold a first error.
    allgood_over_limit: int = 0
    allgood_verified: int = 0
    allgood_hidden_errors: int = 0
    # Completions kept in the rollouts table (runner.keep_rollouts) and their Parquet bytes on disk.
    kept_rollouts: int = 0
    kept_rollout_bytes: int = 0
    # A reasoning policy's rows (steps v7): states by part (thinking / answer), and the reflections
    # recorded on located first errors by the rule's verdict on their own rollouts.
    sections: dict[str, int] = field(default_factory=dict)
    reflections: dict[str, int] = field(default_factory=dict)
    # The human audit (apsgen.audit.report.summary), set by the caller: io does not read audits.
    audit: dict[str, Any] | None = None
    audit_line: str = ""

    @property
    def consensus_fraction(self) -> float | None:
        return self.consensus_paths / self.judged_paths if self.judged_paths else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def positive_ratio(self) -> float:
        labelled = self.positive_mc0 + self.negative_mc0
        return self.positive_mc0 / labelled if labelled else 0.0

    def render(self) -> str:
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        labelled = self.steps - self.unlabelled_steps
        ratio05 = self.positive_mc05 / labelled if labelled else 0.0
        bins = " ".join(str(c) for c in self.mc_histogram)
        total_outcomes = sum(self.verifier_outcomes.values()) or 1
        outcomes = ", ".join(
            f"{k} {v} ({100 * v / total_outcomes:.1f}%)" for k, v in self.verifier_outcomes.items()
        )
        d = self.steps_per_path
        lines = [
            f"job {self.job} (fingerprint {self.fingerprint})",
            f"  problems      {self.problems_done} done of {self.problems_loaded} loaded: {self.searched} searched, "
            f"{skipped} skipped ({reasons}), {self.failed} failed",
            f"  dropped       {self.excluded} excluded as contaminated, {self.duplicates} duplicates, "
            f"{self.bad_rows} bad rows",
            f"  steps         {self.steps} stored states ({self.unlabelled_steps} without MC), "
            f"{self.first_errors} first errors",
            "  verdicts      " + (", ".join(f"{k} {v}" for k, v in sorted(self.verdicts.items())) or "none")
            + "; first errors by step index: "
            + (", ".join(f"{k}: {v}" for k, v in sorted(self.first_errors_by_step.items())) or "none"),
            f"  labels MC>0   {self.positive_mc0} positive, {self.negative_mc0} negative "
            f"(positive ratio {self.positive_ratio:.3f})",
            f"  labels MC>0.5 {self.positive_mc05} positive, {self.negative_mc05} negative "
            f"(positive ratio {ratio05:.3f})",
            f"  MC histogram  [0,1] in {HIST_BINS} bins: {bins}  (exactly 0: {self.mc_exact_zero}, "
            f"exactly 1: {self.mc_exact_one})",
            "  label source  " + (", ".join(f"{k} {v}" for k, v in sorted(self.label_sources.items())) or "none"),
            f"  paths         {self.paths} ({self.correct_paths} correct solutions); steps per path mean {d.mean}, median {d.median}, p90 {d.p90}, max {d.max}",
            f"  per problem   rollouts mean {self.rollouts_per_problem.mean} (max {self.rollouts_per_problem.max}), "
            f"generated tokens mean {self.generated_tokens_per_problem.mean} "
            f"(max {self.generated_tokens_per_problem.max})",
            f"  totals        {self.rollouts} rollouts, {self.generated_tokens} generated tokens, "
            f"{self.prompt_tokens} prompt tokens",
            f"  verifier      {outcomes or 'no rollouts'}",
        ]
        if self.kept_rollouts:
            lines.append(f"  kept          {self.kept_rollouts} of {self.rollouts} rollouts in the rollouts table, "
                         f"{self.kept_rollout_bytes} bytes ({self.kept_rollout_bytes / self.kept_rollouts:.0f} per rollout)")
        if self.sections:
            refl = sum(self.reflections.values())
            lines.append("  reasoning     states " + ", ".join(f"{k} {v}" for k, v in sorted(self.sections.items()))
                         + f"; {refl} reflections on located first errors"
                         + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(self.reflections.items()))
                            + "; correct = back on track)" if refl else ""))
        if self.stop_reasons:
            lines.insert(2, "  stopped       " + ", ".join(f"{k} {v}" for k, v in sorted(self.stop_reasons.items()))
                         + f"; right answers verified before storing (risk above the rule's limit) on {self.allgood_over_limit}"
                         + f" questions: {self.allgood_verified} stored, {self.allgood_hidden_errors} held a first error")
        if self.given_solutions:
            lines.insert(2, f"  given         {self.given_solutions} solutions from the dataset labelled (annotate mode)")
        if self.audit_line:
            lines.append(f"  audit         {self.audit_line}")
        if self.judged_paths:
            lines.append(
                f"  judge         {self.consensus_paths} of {self.judged_paths} judged paths agree "
                f"({100 * (self.consensus_fraction or 0):.1f}%: what `apsgen export --consensus` keeps), "
                f"{self.judge_unparseable} replies without a verdict"
            )
        return "\n".join(lines)


def _counts(array: pa.Array | pa.ChunkedArray) -> dict[Any, int]:
    return {v["values"]: v["counts"] for v in pc.value_counts(array).to_pylist() if v["values"] is not None}


def _shard_counts(table: pa.Table) -> dict[str, Any]:
    """One step shard's counts, column-wise (pyarrow.compute), in one pass per column."""
    mc = table.column("mc_value")
    first = table.column("is_first_error")
    names = table.column_names
    # Verdicts of estimated (or text-settled) states; outputs before schema version 2 have none.
    verdicts: dict[Any, int] = {}
    if "verdict" in names:
        estimated = pc.not_equal(table.column("label_source"), "unestimated")
        verdicts = _counts(pc.filter(table.column("verdict"), estimated))
    valued = pc.drop_null(mc)
    bins = pc.min_element_wise(pc.cast(pc.floor(pc.multiply(valued, HIST_BINS)), pa.int64()), HIST_BINS - 1)

    def count(mask: pa.ChunkedArray | pa.Array) -> int:
        return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)

    reasoning = "section" in names  # steps v7
    return {
        "sections": _counts(table.column("section")) if reasoning else {},
        "reflections": _counts(table.column("reflection_verdict")) if reasoning else {},
        "sources": _counts(table.column("label_source")),
        "verdicts": verdicts,
        "by_step": _counts(pc.filter(table.column("step_index"), first)),
        "first_errors": count(first),
        "unlabelled": mc.null_count,
        "exact0": count(pc.equal(valued, 0.0)),
        "exact1": count(pc.equal(valued, 1.0)),
        "pos0": count(pc.greater(valued, 0.0)),
        "pos05": count(pc.greater(valued, 0.5)),
        "bins": _counts(bins),
    }


def _allgood(problem: dict[str, Any]) -> tuple[int, int, int]:
    """(1 where the rule's risk limit had this problem's right answers verified before storing,
    the paths so stored, the right answers found to hold a first error)."""
    inputs = json.loads(problem.get("label_inputs") or "{}")
    allgood = inputs.get("allgood") if isinstance(inputs, dict) else None
    if not allgood or allgood.get("risk") is None:
        return 0, 0, 0
    limit = json.loads(problem.get("label_rule") or "{}").get("allgood_max_risk")
    over = limit is not None and float(allgood["risk"]) > float(limit)
    return int(over), int(allgood.get("verified", 0)), int(allgood.get("hidden_errors", 0))


def _last_search_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return runs[-1] if runs else {}


def compute_stats(output: str) -> DatasetStats:
    """Statistics of the job output at `output` (a folder or URI)."""
    store = OutputStore(output)
    manifest = store.read_manifest()
    if manifest is None:
        raise StatsError(f"no apsgen output at {output} (manifest.json missing); pass the folder `apsgen run` wrote")
    problems = store.read_problems().to_pylist()
    status = Counter(p["status"] for p in problems)
    skipped = Counter(p["skip_reason"] or "unknown" for p in problems if p["status"] == "skipped")
    outcomes: Counter = Counter({k: 0 for k in OUTCOMES})
    for p in problems:
        outcomes.update(json.loads(p["outcomes"] or "{}"))

    hist = [0] * HIST_BINS
    exact0 = exact1 = steps = unlabelled = pos0 = pos05 = first_errors = 0
    sources: Counter = Counter()
    sections: Counter = Counter()
    reflections: Counter = Counter()
    verdicts: Counter = Counter()
    by_step: Counter = Counter()
    path_lengths: list[float] = []
    correct_paths = 0
    # Shard by shard, so a large output never sits in memory at once.
    for _, path in step_shards(store):
        table = pq.read_table(path, filesystem=store.fs)
        steps += table.num_rows
        c = _shard_counts(table)
        sources.update(c["sources"])
        sections.update(c["sections"])
        reflections.update(c["reflections"])
        verdicts.update(c["verdicts"])
        by_step.update(c["by_step"])
        first_errors += c["first_errors"]
        unlabelled += c["unlabelled"]
        exact0 += c["exact0"]
        exact1 += c["exact1"]
        pos0 += c["pos0"]
        pos05 += c["pos05"]
        for b, n in c["bins"].items():
            hist[b] += n
        for tree in iter_trees(table):  # paths need the rows of each tree
            paths = solution_paths(tree)
            path_lengths.extend(len(p.segments) for p in paths)
            correct_paths += sum(p.correct for p in paths)
    labelled = steps - unlabelled
    run = _last_search_run(manifest.runs)
    allgoods = [_allgood(p) for p in problems if p["status"] == "searched"]
    kept = store.rollout_shards()
    return DatasetStats(
        job=manifest.job,
        fingerprint=manifest.fingerprint,
        problems_loaded=manifest.total_problems,
        problems_done=len(problems),
        searched=status.get("searched", 0),
        skipped=dict(sorted(skipped.items())),
        failed=len(manifest.failed),
        excluded=int(run.get("excluded", 0)),
        duplicates=int(run.get("duplicates", 0)),
        bad_rows=int(run.get("bad_rows", 0)),
        steps=steps,
        unlabelled_steps=unlabelled,
        positive_mc0=pos0,
        negative_mc0=labelled - pos0,
        positive_mc05=pos05,
        negative_mc05=labelled - pos05,
        first_errors=first_errors,
        label_sources=dict(sorted(sources.items())),
        mc_histogram=hist,
        mc_exact_zero=exact0,
        mc_exact_one=exact1,
        paths=len(path_lengths),
        correct_paths=correct_paths,
        steps_per_path=Distribution.of(path_lengths),
        rollouts_per_problem=Distribution.of([p["n_rollouts"] for p in problems]),
        generated_tokens_per_problem=Distribution.of([p["generated_tokens"] for p in problems]),
        prompt_tokens_per_problem=Distribution.of([p["prompt_tokens"] for p in problems]),
        rollouts=sum(p["n_rollouts"] for p in problems),
        generated_tokens=sum(p["generated_tokens"] for p in problems),
        prompt_tokens=sum(p["prompt_tokens"] for p in problems),
        verifier_outcomes=dict(outcomes),
        verdicts=dict(sorted(verdicts.items())),
        first_errors_by_step=dict(sorted(by_step.items())),
        judged_paths=sum(p.get("n_judged_paths") or 0 for p in problems),
        consensus_paths=sum(p.get("n_consensus_paths") or 0 for p in problems),
        judge_unparseable=sum(p.get("n_judge_unparseable") or 0 for p in problems),
        given_solutions=sum(p.get("solution_source") == "given" for p in problems),
        stop_reasons=dict(sorted(Counter(p["stop_reason"] for p in problems
                                         if p["status"] == "searched" and p.get("stop_reason")).items())),
        allgood_over_limit=sum(allgood[0] for allgood in allgoods),
        allgood_verified=sum(allgood[1] for allgood in allgoods),
        allgood_hidden_errors=sum(allgood[2] for allgood in allgoods),
        kept_rollouts=sum(pq.ParquetFile(store.fs.open_input_file(p)).metadata.num_rows for p in kept),
        kept_rollout_bytes=sum(info.size or 0 for info in store.fs.get_file_info(kept)),
        sections=dict(sorted(sections.items())),
        reflections=dict(sorted(reflections.items())),
    )
