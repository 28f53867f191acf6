"""The audit sample: which labelled paths a person reads, and what is shown of each.

A path is audited as a PRM would train on it (`apsgen.paths.labelled_paths` with the stored
verdicts, as the exports and the judge read it): a **first error** path ends at its first `-` step, the located first error;
an **all-correct** path is a sampled solution that reached the gold answer, every step `+`.
Searched paths that end at a `+` or before an undecided state carry no claim about a whole
solution and are not sampled.

Each candidate path gets a rank from a hash of (seed, path id), and each stratum takes its
lowest ranks: the sample is a seeded random sample that does not depend on the order of the
input or of the shards, a larger `--sample` keeps every path a smaller one drew, and a second
auditor with the same seed reads the same paths.

The output's digest (fingerprint plus every finished problem's id, step rows and first errors)
is recorded with every verdict, so verdicts on an earlier state of a growing output are told
apart from the current one's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from apsgen.io.export import iter_trees, step_shards
from apsgen.paths import full_text, labelled_paths, tree_parents
from apsgen.io.store import OutputStore

FIRST_ERROR = "first_error"
ALL_CORRECT = "all_correct"
KINDS = (FIRST_ERROR, ALL_CORRECT)
DEFAULT_SIZE = 40
DEFAULT_CORRECT_SHARE = 0.2  # of the sample, all-correct paths (a first error is what most labels claim)
AFTER_STEPS = 2  # steps shown past the labelled one, from the tree's continuation (not labelled)


class AuditError(ValueError):
    """An audit that cannot run: no output there, nothing to sample, a bad import."""


@dataclass(frozen=True)
class Step:
    text: str
    label: str  # "+" or "-"
    node_id: int
    step_index: int  # the row's step_index (0-based position in its solution)
    mc_value: float | None
    n_correct: int
    n_rollouts: int
    verdict: str | None
    basis: str | None  # verdict_basis: rollouts / arithmetic / retraction / restatement
    reference_value: float | None
    source: str = ""  # label_source: rollouts / screening / wrong_solution / correct_solution / unestimated
    n_correct_flawed: int = 0  # of n_correct, right only through a step that shows an error (0 before schema 5)


@dataclass(frozen=True)
class Candidate:
    """What the sampler needs of a path: enough to validate a verdict without the text."""

    path_id: str
    kind: str
    n_steps: int
    labelled_step: int | None  # 0-based index of the `-` step along the path; None when all-correct


@dataclass(frozen=True)
class AuditItem:
    candidate: Candidate
    problem_id: str
    tree_id: str
    dataset: str
    question: str
    gold_answer: str
    steps: tuple[Step, ...]
    after: tuple[str, ...]  # the tree's next steps past the labelled one (first error only)
    judge_first_error: int | None  # the judge's first wrong step along the path (-1: none)
    judge_outcome: str | None

    @property
    def path_id(self) -> str:
        return self.candidate.path_id

    @property
    def kind(self) -> str:
        return self.candidate.kind

    def shown(self) -> dict[str, Any]:
        """What the auditor was shown, as recorded with the verdict."""
        return {
            "question": self.question,
            "gold_answer": self.gold_answer,
            "steps": [s.text for s in self.steps],
            "labels": [s.label for s in self.steps],
            "after": list(self.after),
            "judge_first_error": self.judge_first_error,
            "judge_outcome": self.judge_outcome,
        }


@dataclass
class Sample:
    digest: str
    seed: int
    items: list[AuditItem]
    population: dict[str, int] = field(default_factory=dict)  # kind -> candidate paths
    candidates: dict[str, Candidate] = field(default_factory=dict)  # every candidate, by path id


def _rank(seed: int, path_id: str) -> str:
    return hashlib.sha256(f"{seed}:{path_id}".encode()).hexdigest()


def output_digest(store: OutputStore) -> str:
    """A digest of the output's labels: the fingerprint and each finished problem's id, step rows
    and first errors, combined order-free (compacting shards keeps it; new problems change it)."""
    manifest = store.read_manifest()
    if manifest is None:
        raise AuditError(f"no apsgen output at {store.uri} (manifest.json missing); pass the folder `apsgen run` wrote")
    table = store.read_problem_columns(["problem_id", "status", "n_steps", "n_first_errors"])
    total = 0
    for pid, status, n_steps, n_fe in zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True):
        h = hashlib.sha256(f"{pid}|{status}|{n_steps}|{n_fe}".encode()).digest()
        total = (total + int.from_bytes(h, "big")) % (1 << 256)
    return hashlib.sha256(f"{manifest.fingerprint}|{table.num_rows}|{total:x}".encode()).hexdigest()[:16]


def _step(seg_text: str, row: dict[str, Any], good: bool) -> Step:
    return Step(
        text=seg_text.strip(), label="+" if good else "-", node_id=row["node_id"], step_index=row["step_index"],
        mc_value=row["mc_value"], n_correct=row["n_correct"], n_rollouts=row["n_rollouts"],
        verdict=row.get("verdict"), basis=row.get("verdict_basis"), reference_value=row.get("reference_value"),
        source=row["label_source"], n_correct_flawed=row.get("n_correct_flawed") or 0,
    )


def _continuation(end: int, by_id: dict[int, dict[str, Any]], children: dict[int, list[int]]) -> tuple[str, ...]:
    """Up to AFTER_STEPS step texts past `end` along the tree (lowest child id first)."""
    out: list[str] = []
    node = end
    while len(out) < AFTER_STEPS and children.get(node):
        child = min(children[node])
        prev, text = full_text(by_id[node]), full_text(by_id[child])
        out.append((text[len(prev):] if text.startswith(prev) else by_id[child]["step_text"]).strip())
        node = child
    return tuple(out)


def tree_items(rows: list[dict[str, Any]]) -> list[AuditItem]:
    """Every auditable path of one tree's step rows."""
    by_id = {r["node_id"]: r for r in rows}
    parents = tree_parents(rows)
    children: dict[int, list[int]] = {}
    for nid, pid in parents.items():
        if pid is not None:
            children.setdefault(pid, []).append(nid)
    items: list[AuditItem] = []
    for path, segments in labelled_paths(rows):
        end = segments[-1][0].node_id
        last_good = segments[-1][1]
        if not last_good:
            kind = FIRST_ERROR
        elif path.correct:
            kind = ALL_CORRECT
        else:
            continue  # a prefix labelled `+` so far: no claim about a whole solution
        end_row = by_id[end]
        steps = tuple(_step(seg.text, by_id[seg.node_id], good) for seg, good in segments)
        candidate = Candidate(
            path_id=f"{end_row['tree_id']}/{end}", kind=kind, n_steps=len(steps),
            labelled_step=len(steps) - 1 if kind == FIRST_ERROR else None,
        )
        items.append(AuditItem(
            candidate=candidate, problem_id=end_row["problem_id"], tree_id=end_row["tree_id"],
            dataset=end_row["dataset"], question=end_row["question"], gold_answer=end_row["gold_answer"],
            steps=steps, after=_continuation(end, by_id, children) if kind == FIRST_ERROR else (),
            judge_first_error=end_row.get("judge_first_error"), judge_outcome=end_row.get("judge_outcome"),
        ))
    return items


def _quota(size: int, correct_share: float, available: dict[str, int]) -> dict[str, int]:
    """Paths per stratum: the all-correct share of `size`, the rest first errors; a stratum with
    too few paths gives its remainder to the other."""
    want_correct = round(size * correct_share)
    quota = {ALL_CORRECT: min(want_correct, available[ALL_CORRECT])}
    quota[FIRST_ERROR] = min(size - quota[ALL_CORRECT], available[FIRST_ERROR])
    quota[ALL_CORRECT] = min(size - quota[FIRST_ERROR], available[ALL_CORRECT])
    return quota


def draw_sample(output: str, *, size: int = DEFAULT_SIZE, seed: int = 0,
                correct_share: float = DEFAULT_CORRECT_SHARE) -> Sample:
    """The seeded, stratified sample of `output`'s labelled paths, with every candidate's outline."""
    if size < 1:
        raise AuditError(f"--sample must be at least 1, got {size}")
    if not 0 <= correct_share <= 1:
        raise AuditError(f"--correct-share must be in [0, 1], got {correct_share}")
    store = OutputStore(output)
    digest = output_digest(store)
    candidates: dict[str, Candidate] = {}
    kept: dict[str, list[tuple[str, AuditItem]]] = {k: [] for k in KINDS}
    # Shard by shard; each stratum keeps at most `size` lowest-ranked items (pruned at 2x size),
    # so memory is one shard plus the sample, and time is linear in the output.
    for _, path in step_shards(store):
        for tree in iter_trees(pq.read_table(path, filesystem=store.fs)):
            for item in tree_items(tree):
                candidates[item.path_id] = item.candidate
                bucket = kept[item.kind]
                bucket.append((_rank(seed, item.path_id), item))
                if len(bucket) > 2 * size:
                    bucket.sort(key=lambda t: t[0])
                    del bucket[size:]
    population = {k: sum(c.kind == k for c in candidates.values()) for k in KINDS}
    if not candidates:
        raise AuditError(f"{output} holds no labelled path to audit yet (no located first error, no correct solution)")
    quota = _quota(size, correct_share, population)
    items: list[AuditItem] = []
    for kind in KINDS:
        bucket = sorted(kept[kind], key=lambda t: t[0])[: quota[kind]]
        items.extend(item for _, item in bucket)
    # Shown interleaved by rank, so quitting early still leaves both strata read.
    items.sort(key=lambda it: _rank(seed + 1, it.path_id))
    return Sample(digest=digest, seed=seed, items=items, population=population, candidates=candidates)
