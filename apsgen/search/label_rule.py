"""The label rule: the one place that decides whether a solution prefix is still correct.

Given the rollout counts of a state (its `MCStats`) and a reference value, a rule answers
`correct`, `wrong` or `undecided`, and how many more rollouts it wants before answering. The
binary search, the pool's admission test, the per-step MC baseline, the stored verdict and the
exports all ask this object, so a label means the same thing everywhere.

Rules (`search.label_rule`):

- `paper`: MC > 0 is correct, MC = 0 wrong (Luo et al. 2024). One lucky rollout from a prefix that
  already went wrong makes it "correct", so this rule gets worse as searches grow.
- `threshold`: MC > `search.mc_threshold` is correct.
- `sequential` (default): a sequential probability ratio test between "this prefix is as good as
  a correct prefix at its depth" (success rate `correct_ratio` x reference) and "it went wrong and
  only recovers by luck" (`wrong_ratio` x reference). The reference is the expected value of a
  correct prefix at the state's depth, interpolated between the question's root value and a
  finished correct solution (value 1), because a correct prefix's chance of success rises as fewer
  steps remain. An undecided test asks for `k` more rollouts on the same prefix (one request, a
  prefix-cache hit) until `search.k_max`; still undecided at `k_max` stays `undecided`, and an
  undecided probe ends its binary search without a label rather than guess.

Evidence is only what the verifier graded: truncated, unparseable and timed-out rollouts never
count as wrong for a decision (all-invalid evidence is `undecided`), whatever
`search.invalid_rollouts` does to the stored MC value.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Literal

from apsgen.config import SearchSpec
from apsgen.search.mc_stats import MCStats

Verdict = Literal["correct", "wrong", "undecided"]


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    more: int = 0  # rollouts the rule wants before it decides (0: this is final)
    reference: float | None = None  # the value the evidence was judged against, if any
    score: float | None = None  # the rule's statistic (the sequential test's log-likelihood ratio)


def graded(mc: MCStats) -> tuple[int, int]:
    """(correct, graded) rollouts: the ones whose final answer the verifier could judge."""
    return mc.n_correct, mc.n_correct + mc.n_wrong


class LabelRule:
    """Base: subclasses implement `decide`; pool admission defaults to "decided correct, MC < 1"."""

    name = "base"

    def __init__(self, search: SearchSpec) -> None:
        self.search = search

    def params(self) -> dict[str, float | int | str]:
        return {}

    def describe(self) -> str:
        """The rule and its parameters as JSON, stored with every verdict."""
        return json.dumps({"rule": self.name, **self.params()}, sort_keys=True)

    def decide(self, mc: MCStats, reference: float | None) -> Decision:
        raise NotImplementedError

    def admits(self, mc: MCStats, reference: float | None) -> bool:
        """May this (non-root) state's wrong rollouts seed binary searches?"""
        value = mc.value
        return value is not None and value < 1 and self.decide(mc, reference).verdict == "correct"

    def admits_root(self, mc: MCStats) -> bool:
        """The empty prefix cannot hold an error: any wrong rollout from it is searchable."""
        return True

    def max_per_state(self) -> int | None:
        """Wrong rollouts one non-root state may put in the pool (None: no limit)."""
        return self.search.pool_max_per_state


class ThresholdRule(LabelRule):
    """MC > a threshold is correct; no evidence (nothing graded, or every rollout excluded) is undecided.
    The reference plays no part, so the verdict stores none."""

    name = "threshold"

    def threshold(self) -> float:
        return self.search.mc_threshold

    def pool_floor(self) -> float:
        return max(self.search.mc_threshold, self.search.pool_min_mc)

    def params(self) -> dict[str, float | int | str]:
        return {"mc_threshold": self.search.mc_threshold, "pool_min_mc": self.search.pool_min_mc}

    def decide(self, mc: MCStats, reference: float | None) -> Decision:
        _, n = graded(mc)
        value = mc.value
        if value is None or (n == 0 and mc.source == "rollouts"):
            return Decision("undecided")
        return Decision("correct" if value > self.threshold() else "wrong")

    def admits(self, mc: MCStats, reference: float | None) -> bool:
        value = mc.value
        return value is not None and self.pool_floor() < value < 1 and self.decide(mc, reference).verdict == "correct"


class PaperRule(ThresholdRule):
    """Luo et al. 2024: MC > 0 is correct, and nothing else bounds the pool."""

    name = "paper"

    def threshold(self) -> float:
        return 0.0

    def pool_floor(self) -> float:
        return 0.0

    def params(self) -> dict[str, float | int | str]:
        return {}

    def admits_root(self, mc: MCStats) -> bool:
        value = mc.value
        return value is not None and 0 < value < 1

    def max_per_state(self) -> int | None:
        return None  # the paper bounds nothing


class SequentialRule(LabelRule):
    """A Wald sequential test on the graded rollouts of one prefix (see the module docstring)."""

    name = "sequential"

    def params(self) -> dict[str, float | int | str]:
        s = self.search
        return {
            "k": s.k,
            "k_max": s.k_max,
            "pool_evidence": s.pool_evidence,
            "correct_ratio": s.correct_ratio,
            "wrong_ratio": s.wrong_ratio,
            "false_correct_rate": s.false_correct_rate,
            "false_wrong_rate": s.false_wrong_rate,
        }

    def hypotheses(self, reference: float) -> tuple[float, float]:
        s = self.search
        ref = min(max(reference, 1e-3), 1.0)
        q1 = min(max(s.correct_ratio * ref, 1e-3), 0.95)
        q0 = min(max(s.wrong_ratio * ref, 1e-4), q1 / 2)
        return q1, q0

    def bounds(self) -> tuple[float, float]:
        """Wald's bounds on the log-likelihood ratio: at or above the first, correct; at or below
        the second, wrong."""
        a, b = self.search.false_correct_rate, self.search.false_wrong_rate
        return math.log((1 - b) / a), math.log(b / (1 - a))

    def llr(self, mc: MCStats, reference: float) -> float:
        c, n = graded(mc)
        q1, q0 = self.hypotheses(reference)
        return c * math.log(q1 / q0) + (n - c) * math.log((1 - q1) / (1 - q0))

    def decide(self, mc: MCStats, reference: float | None) -> Decision:
        s = self.search
        if mc.source in ("wrong_solution", "correct_solution"):
            return Decision("correct" if mc.source == "correct_solution" else "wrong", reference=reference)
        ref = 0.5 if reference is None else reference
        _, n = graded(mc)
        score = self.llr(mc, ref) if n else 0.0
        upper, lower = self.bounds()
        if n and score >= upper:
            return Decision("correct", reference=ref, score=score)
        if n and score <= lower:
            return Decision("wrong", reference=ref, score=score)
        more = min(s.k, s.k_max - mc.n_rollouts)
        return Decision("undecided", more=max(0, more), reference=ref, score=score)

    def admits(self, mc: MCStats, reference: float | None) -> bool:
        # Stricter than the decision: a state whose wrong rollouts seed searches must be correct
        # with twice the evidence, since every search started there inherits the doubt.
        if reference is None or mc.value is None or mc.value >= 1:
            return False
        return self.llr(mc, reference) >= self.search.pool_evidence * self.bounds()[0]


RULES: dict[str, type[LabelRule]] = {r.name: r for r in (PaperRule, ThresholdRule, SequentialRule)}


def make_rule(search: SearchSpec) -> LabelRule:
    return RULES[search.label_rule](search)


def depth_reference(root_value: float | None, depth: int, n_steps: int) -> float | None:
    """The expected value of a correct prefix `depth` steps into an `n_steps`-step solution.

    Geometric interpolation between the root's value (depth 0) and a finished correct solution
    (value 1): a policy that errs at a roughly constant rate per step succeeds from a correct
    prefix with probability root ** (steps left / steps).
    """
    if root_value is None:
        return None
    if n_steps <= 0:
        return root_value
    root = min(max(root_value, 1e-3), 1.0)
    left = max(0, n_steps - depth)
    return root ** (left / n_steps)
