"""What checking one sampled solution against the gold answer gives: an outcome and the answer read."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(str, enum.Enum):
    CORRECT = "correct"
    WRONG = "wrong"
    NO_ANSWER = "no_answer"  # no final answer could be extracted from the solution
    TRUNCATED = "truncated"  # the sample hit max_tokens; its answer is kept for information
    TIMEOUT = "timeout"  # the symbolic check ran past its time budget and was killed


@dataclass(frozen=True)
class AnswerCheck:
    """One sampled solution checked against the gold answer: the outcome and the answer read."""

    outcome: Outcome
    answer: str | None  # the extracted answer, verbatim; None when there was none
