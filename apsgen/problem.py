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
