"""Solution paths and their labels: the chains of states of one search tree, rebuilt from its step
rows by id, labelled as a PRM trains on them. One module for every reader of paths: the exports
(`apsgen.io.export`), the LLM judge (`apsgen.judge`), the human audit (`apsgen.audit`), the stats.

Since steps schema version 3 every state the search created has a row (estimated or not), so a
row's `parent_id` always names a row and a path is followed by ids alone. Outputs written before
(versions 1 and 2) stored only estimated states: there a parent may have no row, and the nearest stored
ancestor is found by text (the longest stored state whose full text the row's prefix starts with).

Two kinds of path:

- A searched path runs from the root to a leaf and stops early at a located first error (every
  step after it is wrong by construction; PRM800K and Math-Shepherd end there too). Only states
  with an MC value are its steps: a state without one is folded into the next estimated state, so
  each label stays at the end of the text it judges and no label is invented.
- A correct path is a sampled solution that reached the gold answer (its last state's
  `label_source` is `correct_solution`): every state on it is a step, and every step is good. A
  correct path through a located first error contradicts it and is left out.

Two conventions for what follows a first error (`convention`):

- `first_error` (the default; OmegaPRM, Math-Shepherd, PRM800K, PURE): a path ends at its first error.
- `corrected` (for reasoning traces, whose reflections often fix an error: arXiv 2505.14391 labels
  the steps after an effective correction apart): where a later step of the path retracts the first
  error and the label rule judged the trace back on track after it (`reflects_on`,
  `reflection_verdict` correct: `apsgen.search.reflections`), the path goes on: the steps from the
  first error up to the reflection are `-` (the corrected span), the reflection is `+`, and, on a
  path that reached the gold answer, so is every step after it up to the next step whose own text
  shows an error; on a wrong-answer path it ends at the reflection (what follows was not judged).
  Every state of the span is a step of its own.

Labels: a state's hard label is the label rule's stored verdict (`correct` is `+`, `wrong` is `-`)
unless a threshold is given, in which case it is `mc_value > threshold`. Along a path no `+`
follows a `-`: a labelled path ends at its first `-`, and before a state the rule left `undecided`.
Outputs written before verdicts were stored fall back to MC > 0.5.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apsgen.problem import Problem
    from apsgen.search.result import ProblemResult


@dataclass(frozen=True)
class Segment:
    """One step along a path: the text it adds since the previous step."""

    node_id: int
    text: str  # full_text(this) minus full_text(previous step)
    mc_value: float | None  # None only on a correct path, for a state nobody estimated
    is_first_error: bool
    on_correct_path: bool = False
    verdict: str | None = None  # the label rule's (None in outputs written before verdicts were stored)
    score: float | None = None  # the rule's statistic on the state's evidence (label_score), if it has one
    basis: str | None = None  # what settled the verdict (verdict_basis): the rollouts, or the step's text


@dataclass(frozen=True)
class SolutionPath:
    problem_id: str
    question: str
    dataset: str
    segments: tuple[Segment, ...]
    correct: bool = False  # a correct sampled solution (all steps good)
    # `corrected` convention: the reflection that corrected the first error (its node id); the path
    # goes on past the first error to it (and to the end of a right-answer solution).
    reflection: int | None = None
    # The verdict of a reflection recorded on this path's first error (`reflection_verdict`: correct =
    # back on track), in either convention; None where none was recorded.
    reflection_verdict: str | None = None

    @property
    def end_node(self) -> int:
        return self.segments[-1].node_id


def result_rows(problem: Problem, result: ProblemResult) -> list[dict[str, Any]]:
    """A search result's states as step rows (what a path reader needs of them), before they are
    stored: for the judge stage and the benchmarks, which read a result's paths in memory."""
    return [{**asdict(s), "question": problem.question, "problem_id": problem.id, "dataset": problem.dataset}
            for s in result.steps]


def full_text(row: dict[str, Any]) -> str:
    return row["prefix"] + row["step_text"]


def tree_parents(rows: list[dict[str, Any]]) -> dict[int, int | None]:
    """Each row's parent row (None: the root): by `parent_id`, or by text where the parent has no row."""
    by_id = {r["node_id"]: r for r in rows}
    parents: dict[int, int | None] = {}
    by_length: list[dict[str, Any]] | None = None
    for nid, row in by_id.items():
        pid = row["parent_id"]
        if pid is None or pid in by_id:
            parents[nid] = pid
            continue
        if by_length is None:  # only old outputs get here; longest first = nearest ancestor
            by_length = sorted(by_id.values(), key=lambda r: (-len(full_text(r)), r["node_id"]))
        prefix = row["prefix"]
        parents[nid] = next(
            (c["node_id"] for c in by_length
             if len(full_text(c)) <= len(prefix) and prefix.startswith(full_text(c)) and c["node_id"] != nid),
            None,
        )
    return parents


def _chain(node: int, parents: dict[int, int | None]) -> list[int]:
    """Root-first list of the rows ending at `node`."""
    chain = [node]
    while (p := parents[chain[-1]]) is not None and p not in chain:
        chain.append(p)
    return chain[::-1]


def _segments(chain: list[int], by_id: dict[int, dict[str, Any]], correct: bool,
              reflection: int | None = None) -> tuple[Segment, ...]:
    segments = []
    prev_text = ""
    unfolded = False  # past the first error of a corrected path: every state is a step
    for n in chain:
        row = by_id[n]
        if (row["mc_value"] is None and not correct and not unfolded
                and row.get("verdict") not in ("correct", "wrong")):
            continue  # folded into the next estimated (or text-settled: verdict_basis) state
        if reflection is not None and row["is_first_error"]:
            unfolded = True
        if n == reflection:  # the reflection's label is its own verdict on its rollouts
            text = full_text(row)
            segments.append(Segment(n, text[len(prev_text):] if text.startswith(prev_text) else text, row["mc_value"],
                                    False, False, row.get("reflection_verdict"), None, "reflection"))
            prev_text = text
            continue
        text = full_text(row)
        segment = text[len(prev_text):] if text.startswith(prev_text) else text
        segments.append(Segment(n, segment, row["mc_value"], bool(row["is_first_error"]), correct, row.get("verdict"),
                                row.get("label_score"), row.get("verdict_basis")))
        prev_text = text
    return tuple(segments)


def _corrected_end(chain: list[int], cut: int, by_id: dict[int, dict[str, Any]],
                   shows_error: dict[int, bool]) -> tuple[int, int] | None:
    """(index the corrected path ends at, its reflection's node id), or None: the first state after
    the first error `chain[cut]` that reflects on it and was judged back on track. `shows_error`
    memoises, per node, whether its own text shows an error (paths share their steps)."""
    from apsgen.label.text import text_error

    def shows(n: int) -> bool:
        if n not in shows_error:
            shows_error[n] = text_error(by_id[n]["step_text"]) is not None
        return shows_error[n]

    first = chain[cut]
    for i in range(cut + 1, len(chain)):
        row = by_id[chain[i]]
        if row.get("reflects_on") == first:
            if row.get("reflection_verdict") != "correct":
                return None
            if by_id[chain[-1]]["label_source"] != "correct_solution":
                return i, chain[i]
            # A right-answer trace goes on to its end, or to the step before the next one whose own
            # text shows an error (a false equation, another retraction): that step was not judged.
            end = next((j - 1 for j in range(i + 1, len(chain)) if shows(chain[j])), len(chain) - 1)
            return end, chain[i]
    return None


def solution_paths(rows: list[dict[str, Any]], *, correct_paths: bool = True,
                   convention: str = "first_error") -> list[SolutionPath]:
    """The solution paths of one tree's step rows, ordered by end state (searched before correct);
    `convention` says what follows a first error (see the module doc)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention {convention!r}: expected one of {', '.join(CONVENTIONS)}")
    if not rows:
        return []
    parents = tree_parents(rows)
    by_id = {r["node_id"]: r for r in rows}
    has_child = {p for p in parents.values() if p is not None}
    ends: dict[int, list[int]] = {}  # searched path end -> its chain
    reflections: dict[int, int] = {}  # corrected path end -> its reflection
    shows_error: dict[int, bool] = {}
    correct: set[int] = set()
    for leaf in sorted(n for n in parents if n not in has_child):
        chain = _chain(leaf, parents)
        cut = next((i for i, n in enumerate(chain) if by_id[n]["is_first_error"]), None)
        if by_id[leaf]["label_source"] == "correct_solution" and cut is None:
            if correct_paths:
                correct.add(leaf)
            continue
        if cut is None:  # no located error: the path ends at its last estimate
            cut = max((i for i, n in enumerate(chain) if by_id[n]["mc_value"] is not None), default=None)
        elif convention == "corrected" and (found := _corrected_end(chain, cut, by_id, shows_error)) is not None:
            cut, reflections[chain[found[0]]] = found
        if cut is not None:
            ends[chain[cut]] = chain[: cut + 1]
    # An end inside another end's chain is a prefix of that path, not a path of its own.
    inner = {n for chain in ends.values() for n in chain[:-1]}
    # first error -> the verdict of a reflection recorded on it (the lowest node's, where traces differ)
    reflected: dict[int, str] = {}
    for n in sorted(by_id):
        on, verdict = by_id[n].get("reflects_on"), by_id[n].get("reflection_verdict")
        if on is not None and verdict is not None:
            reflected.setdefault(on, verdict)
    searched = set(ends) - inner
    first = rows[0]
    out = []
    for end, is_correct in [*((e, False) for e in sorted(searched)), *((e, True) for e in sorted(correct))]:
        reflection = None if is_correct else reflections.get(end)
        chain = _chain(end, parents)
        segments = _segments(chain, by_id, is_correct, reflection)
        error = next((n for n in chain if by_id[n]["is_first_error"]), None)
        verdict = by_id[reflection].get("reflection_verdict") if reflection is not None else \
            reflected.get(error) if error is not None else None
        out.append(SolutionPath(first["problem_id"], first["question"], first["dataset"], segments, is_correct,
                                reflection, verdict))
    return out


CONVENTIONS = ("first_error", "corrected")
LEGACY_THRESHOLD = 0.5  # for rows written before verdicts were stored


def step_is_good(mc_value: float | None, verdict: str | None, threshold: float | None) -> bool | None:
    """A state's hard label: True (+), False (-), or None (undecided: no label)."""
    if threshold is not None:
        if mc_value is None:  # settled by the step's text (verdict_basis), or no label
            return verdict == "correct" if verdict in ("correct", "wrong") else None
        return mc_value > threshold
    if verdict in ("correct", "wrong"):
        return verdict == "correct"
    if verdict == "undecided" or mc_value is None:
        return None
    return mc_value > LEGACY_THRESHOLD


# Verdict bases that settle a step wrong by what its text shows (apsgen.label.decision).
TEXT_BASES = ("arithmetic", "retraction")


def soft_label(segment: Segment, good: bool) -> float:
    """How sure the labels are that the step's prefix is right, in [0, 1]: what a PRM trained on soft
    labels regresses onto. The sequential rule's posterior P(correct) = sigmoid(its log-likelihood
    ratio, equal prior odds) where it decided on rollouts; 1 on a correct path, 0 where the step's
    text settled it wrong; else (the paper's rules, older outputs) the MC value, as Math-Shepherd's
    soft labels are. Not the MC value first: a correct prefix of a hard question has a low MC (the
    policy often fails from it) though it is certainly right."""
    import math

    if segment.on_correct_path:
        return 1.0
    if segment.verdict == "wrong" and segment.basis in TEXT_BASES:
        return 0.0  # certain by its text, whatever its rollouts did
    if segment.score is not None:
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, segment.score))))
    if segment.mc_value is None:
        return 1.0 if good else 0.0
    return float(segment.mc_value)


def labelled_segments(path: SolutionPath, threshold: float | None) -> list[tuple[Segment, bool]]:
    """The path's segments with their labels, ending at the first `-` and before an undecided state.
    Every step of a correct sampled solution is good. A corrected path (`path.reflection`) goes on
    past its first `-`: `-` up to its reflection, `+` from it on."""
    out: list[tuple[Segment, bool]] = []
    if path.reflection is not None:
        phase = "before"  # before the first error, in the span it begins, after the reflection
        for seg in path.segments:
            if phase == "before" and not seg.is_first_error:
                good = step_is_good(seg.mc_value, seg.verdict, threshold)
                if good is None:
                    return out
                out.append((seg, good))
                continue
            phase = "after" if seg.node_id == path.reflection or phase == "after" else "span"
            out.append((seg, phase == "after"))
        return out
    for seg in path.segments:
        good = True if seg.on_correct_path else step_is_good(seg.mc_value, seg.verdict, threshold)
        if good is None:
            break
        out.append((seg, good))
        if not good:
            break
    return out


def labelled_paths(rows: list[dict[str, Any]], threshold: float | None = None, *, correct_paths: bool = True,
                   convention: str = "first_error") -> list[tuple[SolutionPath, list[tuple[Segment, bool]]]]:
    """One tree's paths with at least one label, each once (two paths that label the same states
    up to the same last state are one training example); `convention`: see the module doc."""
    out = []
    seen: set[int] = set()
    for path in solution_paths(rows, correct_paths=correct_paths, convention=convention):
        segments = labelled_segments(path, threshold)
        if not segments:
            continue
        end = segments[-1][0].node_id
        if end in seen:
            continue
        seen.add(end)
        out.append((path, segments))
    return out
