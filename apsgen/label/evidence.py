"""The counts behind one Monte Carlo estimate MC(s) = correct completions / valid completions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

InvalidPolicy = Literal["wrong", "exclude"]


@dataclass(frozen=True)
class MCStats:
    n_rollouts: int
    n_correct: int
    n_wrong: int  # an answer was extracted and it is wrong
    n_truncated: int = 0
    n_unparseable: int = 0
    n_timeouts: int = 0
    # Of n_correct, right answers reached through a step whose own text shows an error (a false
    # equation, a retraction: apsgen.label.text): recoveries, not evidence for the prefix.
    n_correct_flawed: int = 0
    invalid: InvalidPolicy = "wrong"
    # "unestimated": a state of the tree nobody estimated (stored so the tree is whole)
    source: Literal["rollouts", "screening", "wrong_solution", "correct_solution", "unestimated"] = "rollouts"

    @property
    def n_invalid(self) -> int:
        return self.n_truncated + self.n_unparseable + self.n_timeouts

    @property
    def denominator(self) -> int:
        # "exclude": a rollout we could not grade says nothing about the prefix.
        return self.n_rollouts - self.n_invalid if self.invalid == "exclude" else self.n_rollouts

    @property
    def value(self) -> float | None:
        """MC(s), or None when every rollout was excluded; a finished solution's is 1 or 0."""
        if self.source == "correct_solution":
            return 1.0
        if self.source == "wrong_solution":
            return 0.0
        d = self.denominator
        return self.n_correct / d if d > 0 else None

    @property
    def n_clean_correct(self) -> int:
        """Right answers reached without a step that shows an error by its text."""
        return self.n_correct - self.n_correct_flawed

    @property
    def graded(self) -> tuple[int, int]:
        """(clean successes, graded): of the rollouts whose final answer the verifier could judge,
        those that reached the right answer without a step that shows an error by its text."""
        return self.n_clean_correct, self.n_correct + self.n_wrong

    @property
    def clean_value(self) -> float | None:
        """The share of completions that reach the right answer cleanly: what the sequential label
        rule and its reference values measure (`value` when no continuation shows an error)."""
        if self.source in ("correct_solution", "wrong_solution"):
            return self.value
        d = self.denominator
        return self.n_clean_correct / d if d > 0 else None

    @classmethod
    def from_rollouts(cls, rollouts: Iterable[Any], invalid: InvalidPolicy, source: str = "rollouts") -> MCStats:
        """The counts of sampled rollouts (each with an `outcome` and a `flawed` flag)."""
        rs = list(rollouts)
        stats = cls.from_outcomes((r.outcome for r in rs), invalid, source)
        return replace(stats, n_correct_flawed=sum(1 for r in rs if r.outcome == "correct" and r.flawed))

    @classmethod
    def from_outcomes(
        cls, outcomes: Iterable[str], invalid: InvalidPolicy, source: str = "rollouts"
    ) -> MCStats:
        outs = list(outcomes)
        return cls(
            n_rollouts=len(outs),
            n_correct=outs.count("correct"),
            n_wrong=outs.count("wrong"),
            n_truncated=outs.count("truncated"),
            n_unparseable=outs.count("no_answer"),
            n_timeouts=outs.count("timeout"),
            invalid=invalid,
            source=source,  # type: ignore[arg-type]
        )

    def merged(self, more: MCStats) -> MCStats:
        """These counts plus those of more rollouts on the same prefix."""
        return MCStats(
            n_rollouts=self.n_rollouts + more.n_rollouts,
            n_correct=self.n_correct + more.n_correct,
            n_wrong=self.n_wrong + more.n_wrong,
            n_truncated=self.n_truncated + more.n_truncated,
            n_unparseable=self.n_unparseable + more.n_unparseable,
            n_timeouts=self.n_timeouts + more.n_timeouts,
            n_correct_flawed=self.n_correct_flawed + more.n_correct_flawed,
            invalid=self.invalid,
            source=self.source,
        )

    @classmethod
    def known(cls, correct: bool) -> MCStats:
        """A finished solution's own verdict: MC 1 or 0 without any rollout."""
        return cls(
            n_rollouts=0,
            n_correct=0,
            n_wrong=0,
            source="correct_solution" if correct else "wrong_solution",
        )
