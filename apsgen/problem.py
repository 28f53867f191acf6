"""The unit of work: one question with its gold final answer."""

from __future__ import annotations

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
