"""Solution paths: the chains of labelled states of one search tree, rebuilt from step rows.

A search tree is stored as annotated states (one step row each). Not every state of the tree is
annotated: the binary search evaluates only some positions of a rollout, so a row's `parent_id`
may name a state that has no row. A state whose every rollout was excluded has a row but no MC
value. Neither kind carries a label, so both are folded into the next labelled state: its segment
is all the text between its nearest labelled ancestor and its own end. That keeps each label at
the end of the text it judges (the state's full prefix), which is what step-level PRM training
reads, and invents no label for a step nobody estimated.

A path runs from the root to a labelled leaf, and stops early at a located first error: every step
after a first error is wrong by construction, and PRM datasets (PRM800K, Math-Shepherd) end there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Segment:
    """One labelled state along a path: the text it adds since the previous labelled state."""

    node_id: int
    text: str  # full_text(this) minus full_text(previous labelled state)
    mc_value: float
    is_first_error: bool
    verdict: str | None = None  # the label rule's (None in outputs written before verdicts were stored)


@dataclass(frozen=True)
class SolutionPath:
    problem_id: str
    question: str
    dataset: str
    segments: tuple[Segment, ...]

    @property
    def end_node(self) -> int:
        return self.segments[-1].node_id


def full_text(row: dict[str, Any]) -> str:
    return row["prefix"] + row["step_text"]


def labelled_parents(rows: list[dict[str, Any]], *, with_unlabelled: bool = False) -> dict[int, int | None]:
    """For each labelled state of one tree, its nearest labelled ancestor (None: the root).

    `with_unlabelled` treats states without an MC value as nodes too (the tree viewer shows them).
    """
    by_id = {r["node_id"]: r for r in rows}
    labelled = {nid: r for nid, r in by_id.items() if with_unlabelled or r["mc_value"] is not None}
    # Longest first, so the first text match is the nearest ancestor.
    by_length = sorted(labelled.values(), key=lambda r: (-len(full_text(r)), r["node_id"]))

    def by_text(row: dict[str, Any]) -> int | None:
        # The parent has no row: text only grows along a path, so the nearest labelled ancestor
        # is the longest labelled state whose full text the row's prefix starts with.
        prefix = row["prefix"]
        for cand in by_length:
            text = full_text(cand)
            if len(text) <= len(prefix) and prefix.startswith(text) and cand["node_id"] != row["node_id"]:
                return cand["node_id"]
        return None

    parents: dict[int, int | None] = {}
    for nid, row in labelled.items():
        cur = row
        parent: int | None = None
        seen = {nid}
        while True:
            pid = cur["parent_id"]
            if pid is None:
                break
            if pid in labelled:
                parent = pid
                break
            if pid in by_id and pid not in seen:  # annotated without a label: keep climbing
                seen.add(pid)
                cur = by_id[pid]
                continue
            parent = by_text(cur)
            break
        parents[nid] = parent
    return parents


def solution_paths(rows: list[dict[str, Any]]) -> list[SolutionPath]:
    """The solution paths of one tree's step rows, ordered by their end state's node id."""
    if not rows:
        return []
    parents = labelled_parents(rows)
    by_id = {r["node_id"]: r for r in rows}
    has_child = {p for p in parents.values() if p is not None}

    ends: set[int] = set()
    for leaf in (n for n in parents if n not in has_child):
        chain = _chain(leaf, parents)
        first_error = next((n for n in chain if by_id[n]["is_first_error"]), None)
        ends.add(first_error if first_error is not None else leaf)
    first = rows[0]
    out = []
    for end in sorted(ends):
        chain = _chain(end, parents)
        segments = []
        prev_text = ""
        for n in chain:
            text = full_text(by_id[n])
            segment = text[len(prev_text):] if text.startswith(prev_text) else text
            row = by_id[n]
            segments.append(Segment(n, segment, float(row["mc_value"]), bool(row["is_first_error"]), row.get("verdict")))
            prev_text = text
        out.append(SolutionPath(first["problem_id"], first["question"], first["dataset"], tuple(segments)))
    return out


def _chain(node: int, parents: dict[int, int | None]) -> list[int]:
    """Root-first list of labelled states ending at `node`."""
    chain = [node]
    while (p := parents[chain[-1]]) is not None and p not in chain:
        chain.append(p)
    return chain[::-1]
