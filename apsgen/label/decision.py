"""A verdict on one solution prefix with what settled it, and the one function that writes it.

Every state's verdict is written by `settle`, whatever settled it: the label rule on rollouts
(`apsgen.label.rule.decide`), the step's own text (`by_text`), a restatement of the question
(`by_restatement`), or what a state is by definition (`by_definition`: the empty prefix is correct,
a finished solution is as right as its answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Verdict = Literal["correct", "wrong", "undecided"]
# What settled a verdict: the rule on the rollouts, the step's text (a false equation, a
# retraction), a restatement (it has its parent's verdict), or what the state is by definition.
Basis = Literal["rollouts", "arithmetic", "retraction", "restatement", "definition"]


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    more: int = 0  # rollouts the rule wants before it decides (0: this is final)
    reference: float | None = None  # the value the evidence was judged against, if any
    score: float | None = None  # the rule's statistic (the sequential test's log-likelihood ratio)
    basis: str = "rollouts"


class HasDecision(Protocol):
    decision: Decision | None


def settle(state: HasDecision, decision: Decision) -> Decision:
    """Write `decision` as the state's verdict: the one place a verdict is written."""
    state.decision = decision
    return decision


def by_text(basis: str) -> Decision:
    """Wrong because the step, or one before it, shows an error by its text."""
    return Decision("wrong", basis=basis)


def by_restatement() -> Decision:
    """A restatement between a correct prefix and a later verdict has its parent's (correct)."""
    return Decision("correct", basis="restatement")


def by_definition(correct: bool) -> Decision:
    """The empty prefix (correct), or a finished solution (as right as its final answer).

    Stored with basis `rollouts`, as rows always have been for these: the counts behind them are
    the solution's own (MC 1 or 0 by definition, `label_source` says which)."""
    return Decision("correct" if correct else "wrong")
