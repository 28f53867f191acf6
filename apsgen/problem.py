"""The unit of work: one question with its gold final answer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    id: str  # stable: hash of the normalised question and answer
    question: str
    answer: str  # the gold final answer alone (already extracted from a worked solution)
    dataset: str = ""
    row: int = -1  # row number in the source dataset, for messages
    # A given solution to label (search.mode annotate): its steps, or its text to split by the job's
    # step rule. None for questions whose solutions the policy samples.
    steps: tuple[str, ...] | None = None
    solution: str | None = None

    @property
    def has_solution(self) -> bool:
        return self.steps is not None or self.solution is not None


def join_steps(steps: tuple[str, ...]) -> tuple[str, list[int]]:
    """A list of steps as one solution text (steps separated by a blank line, the delimiter the
    policy's prompt asks for) and the offsets where each step but the last ends."""
    parts = [s.strip() for s in steps]
    text, bounds = "", []
    for i, part in enumerate(parts):
        text += part
        if i < len(parts) - 1:
            text += "\n\n"
            bounds.append(len(text))
    return text, bounds


def normalise_text(text: str) -> str:
    """Whitespace- and case-insensitive form used for ids and contamination matching."""
    return " ".join(text.split()).lower()


def problem_id(question: str, answer: str, solution: str | None = None) -> str:
    """Stable id of a question with its gold answer (and, in annotate mode, the solution to label)."""
    key = f"{normalise_text(question)}\x00{normalise_text(answer)}"
    if solution is not None:
        key += f"\x00{solution}"  # exact text: two solutions differing in a step are two items
    return hashlib.sha256(key.encode()).hexdigest()[:16]
