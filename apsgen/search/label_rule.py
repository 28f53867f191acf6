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
  only recovers by luck" (`recovery_margin` x this question's recovery rate). The reference is
  the expected value of a correct prefix at the state's depth, interpolated between the question's
  root value and a finished correct solution (value 1), because a correct prefix's chance of
  success rises as fewer steps remain. The recovery rate (how often a prefix that went wrong still
  ends at the right answer) is the policy's and the question's, not a constant: it is estimated per
  question from every state the rule decided (`RecoveryEstimate`), starting from
  `recovery_prior`. Where the policy never recovers, one right completion shows a prefix is still
  correct (the paper's rule, which is exact there); where it often does, the test asks for more.
  An undecided test asks for more rollouts on the same prefix (one request, a prefix-cache hit:
  about as many as it expects to need, between k/4 and k) until `search.k_max`. Still undecided at
  `k_max`, it takes the likelier hypothesis only where they are far apart (a wrong prefix assumed to
  succeed at most 1/8 as often as a correct one: a policy that almost never recovers); otherwise
  the probe stays `undecided`, and an undecided probe ends its binary search without a label
  rather than guess (the search is retried once at the end of the question, against what the rule
  has learned by then).

  The recovery rate is mostly the policy's habit, and one question's evidence cannot always tell a
  correct prefix of low value (a hard step late in the solution) from a wrong one that recovers.
  So a job's first `search.job_prior_questions` questions are searched first, and every later
  question starts from the median rate they learned, worth `search.job_prior_weight` rollouts
  (`job_recovery_prior`): the driver, and `search_in_job_order` for `apsgen bench search` and
  `apsgen eval processbench`, all do this, from the rule JSON the first questions stored; the driver freezes the result in the
  output's manifest, so a resumed job uses the same prior.

Evidence is only what the verifier graded: truncated, unparseable and timed-out rollouts never
count as wrong for a decision (all-invalid evidence is `undecided`), whatever
`search.invalid_rollouts` does to the stored MC value.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
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

    def observe(self, mc: MCStats, decision: Decision) -> None:
        """A state's final evidence and decision, for rules that learn from the question (no-op)."""

    def version(self) -> int:
        """Changes whenever what the rule learned may have changed, so the pool can reconsider states it
        refused against an earlier estimate."""
        return 0

    def consolidate(self) -> None:
        """Settle what the rule learned from the question before undecided searches are retried."""


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


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


class RecoveryEstimate:
    """How often a prefix that went wrong still reaches the right answer, for one question.

    A two-component mixture over the states the rule decided: a wrong prefix succeeds at the
    question's recovery rate r, a correct one at `scale` x its reference value (a question whose
    steps are uneven runs below the reference). Fitted by EM, from Beta priors on r
    (`recovery_prior`, worth `recovery_prior_weight` rollouts) and on the scale, each time the
    number of decided states doubles and once more before undecided searches are retried, so the
    work is linear in the states. Likelihoods hold whatever rule chose how many rollouts to draw,
    so the rule's own stopping does not bias the fit the way "mean MC of the states called wrong"
    would.
    """

    SCALE_PRIOR = 0.8  # a correct prefix's value / its reference, before the question's evidence
    SCALE_WEIGHT = 8.0  # worth this many rollouts at reference value 1
    ITERATIONS = 25
    SPREAD = 6.0  # correct prefixes' values vary around scale x reference: a Beta with a + b = SPREAD
    # ...and with a >= MIN_A, so the correct component has no mass piled at 0. With a < 1 (a correct
    # prefix's expected value below 1/6, on questions the policy rarely solves) it "explains" the
    # 0-of-n wrong prefixes, the components swap, and the recovery rate is fitted to correct prefixes.
    MIN_A = 2.0

    def __init__(self, prior: float, weight: float) -> None:
        self.prior, self.weight = prior, weight
        self.evidence: list[tuple[int, int, float]] = []  # (successes, graded, reference) per state
        self.rate = prior
        self.scale = self.SCALE_PRIOR
        self._next_fit = 1
        self.fits = 0  # how many fits so far: the estimate may have changed after each

    def observe(self, correct: int, graded: int, reference: float) -> None:
        if graded <= 0:
            return
        self.evidence.append((correct, graded, min(max(reference, 1e-3), 1.0)))
        if len(self.evidence) >= self._next_fit:
            self.fit()
            self._next_fit = 2 * len(self.evidence)

    def fit(self) -> None:
        self.fits += 1
        r, g, pi = self.prior, self.SCALE_PRIOR, 0.5
        for _ in range(self.ITERATIONS):
            r = min(max(r, 1e-6), 1 - 1e-6)
            lr, l1r = math.log(r), math.log1p(-r)
            lpi, l1pi = math.log(pi), math.log1p(-pi)
            ws = wc = wn = cs = ce = 0.0
            for c, n, ref in self.evidence:
                p = min(max(g * ref, 1e-3), 1 - 1e-3)
                conc = max(self.SPREAD, self.MIN_A / p)
                a, b = p * conc, (1 - p) * conc
                log_w = lpi + c * lr + (n - c) * l1r
                log_c = l1pi + _log_beta(c + a, n - c + b) - _log_beta(a, b)
                w = 1.0 / (1.0 + math.exp(min(700.0, log_c - log_w)))
                ws += w
                wc += w * c
                wn += w * n
                cs += (1 - w) * c
                ce += (1 - w) * n * ref
            r = (self.prior * self.weight + wc) / (self.weight + wn)
            g = (self.SCALE_PRIOR * self.SCALE_WEIGHT + cs) / (self.SCALE_WEIGHT + ce)
            pi = (1.0 + ws) / (2.0 + len(self.evidence))
        self.rate, self.scale = r, g


class SequentialRule(LabelRule):
    """A Wald sequential test on the graded rollouts of one prefix (see the module docstring).

    One instance serves one question: it learns that question's recovery rate as it decides."""

    name = "sequential"
    # A wrong prefix's success rate is never assumed below this. Low on purpose: where the policy
    # truly never recovers, the estimate falls toward 0 and one right completion should then be
    # nearly proof (the paper's rule, exact there); a floor of 0.01 left correct prefixes whose
    # value is below ~0.1 undecided at k_max, and starved those questions' pools.
    Q0_FLOOR = 0.0005
    # At k_max, where a correct prefix is assumed to succeed at least this many times as often as a
    # wrong one (this question's, and this job's, wrong prefixes almost never recover), the test
    # takes the likelier hypothesis instead of leaving the probe undecided: there a prefix of low
    # value that failed k_max times is far likelier wrong than correct, and the paper's rule, exact
    # when nothing recovers, calls it wrong after k. Where recovery is common the two hypotheses are
    # close (q0 sits at its cap, q1 / 2) and an undecided probe stays undecided.
    DECISIVE_RATIO = 8.0

    def __init__(self, search: SearchSpec) -> None:
        super().__init__(search)
        self.recovery = RecoveryEstimate(search.recovery_prior, search.recovery_prior_weight)

    def params(self) -> dict[str, float | int | str]:
        s = self.search
        return {
            "k": s.k,
            "k_max": s.k_max,
            "pool_evidence": s.pool_evidence,
            "correct_ratio": s.correct_ratio,
            "recovery_prior": s.recovery_prior,
            "recovery_prior_weight": s.recovery_prior_weight,
            "job_prior_questions": s.job_prior_questions,
            "recovery_margin": s.recovery_margin,
            "false_correct_rate": s.false_correct_rate,
            "false_wrong_rate": s.false_wrong_rate,
        }

    def describe(self) -> str:
        """Parameters, plus what the rule learned on this question by the end of its search."""
        learned = {
            "recovery_rate": round(self.recovery.rate, 6),
            "correct_scale": round(self.recovery.scale, 6),
            "states": len(self.recovery.evidence),
        }
        return json.dumps({"rule": self.name, **self.params(), "learned": learned}, sort_keys=True)

    def wrong_value(self) -> float:
        """The success rate assumed for a wrong prefix: a margin above the estimated recovery rate."""
        return max(self.Q0_FLOOR, self.search.recovery_margin * self.recovery.rate)

    def hypotheses(self, reference: float) -> tuple[float, float]:
        s = self.search
        ref = min(max(reference, 1e-3), 1.0)
        q1 = min(max(s.correct_ratio * ref, 1e-3), 0.95)
        q0 = min(self.wrong_value(), q1 / 2)
        return q1, q0

    def bounds(self) -> tuple[float, float]:
        """Wald's bounds on the log-likelihood ratio: at or above the first, correct; at or below
        the second, wrong."""
        a, b = self.search.false_correct_rate, self.search.false_wrong_rate
        return math.log((1 - b) / a), math.log(b / (1 - a))

    def llr(self, mc: MCStats, reference: float) -> float:
        """log P(evidence | correct, success rate q1) / P(evidence | wrong, success rate q0)."""
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
        more = min(self.top_up(mc, ref, score), s.k_max - mc.n_rollouts)
        if more <= 0 and n:
            q1, q0 = self.hypotheses(ref)
            if q1 >= self.DECISIVE_RATIO * q0:  # at k_max, and a wrong prefix almost never succeeds
                return Decision("correct" if score > 0 else "wrong", reference=ref, score=score)
        return Decision("undecided", more=max(0, more), reference=ref, score=score)

    def top_up(self, mc: MCStats, reference: float, score: float) -> int:
        """Rollouts to ask for next: about as many as the test expects to need at the success rate
        seen so far (between k/4 and k), so a probe one rollout short of a decision is not sold k."""
        k = self.search.k
        c, n = graded(mc)
        if n == 0:
            return k
        q1, q0 = self.hypotheses(reference)
        p = c / n
        drift = p * math.log(q1 / q0) + (1 - p) * math.log((1 - q1) / (1 - q0))
        if abs(drift) < 1e-9:
            return k
        upper, lower = self.bounds()
        distance = (upper - score) if drift > 0 else (score - lower)
        # Extra rollouts that grade nothing (truncated, unparseable) are paid for too.
        graded_share = max(n / mc.n_rollouts, 0.5) if mc.n_rollouts else 1.0
        need = math.ceil(distance / abs(drift) / graded_share)
        return min(k, max(math.ceil(k / 4), need))

    def admits(self, mc: MCStats, reference: float | None) -> bool:
        # Stricter than the decision: a state whose wrong rollouts seed searches must be correct
        # with more evidence, since every search started there inherits the doubt.
        if reference is None or mc.value is None or mc.value >= 1:
            return False
        return self.llr(mc, reference) >= self.search.pool_evidence * self.bounds()[0]

    def observe(self, mc: MCStats, decision: Decision) -> None:
        if mc.source != "rollouts" or decision.reference is None:
            return
        c, n = graded(mc)
        self.recovery.observe(c, n, decision.reference)

    def version(self) -> int:
        return self.recovery.fits

    def consolidate(self) -> None:
        self.recovery.fit()


def job_prior_count(search: SearchSpec) -> int:
    """How many of a job's first questions teach the rest their recovery prior (0: none do)."""
    return search.job_prior_questions if search.label_rule == "sequential" else 0


def job_recovery_prior(described: Iterable[str | None], search: SearchSpec) -> float | None:
    """The recovery prior for a job's later questions, from its first questions' stored rules.

    `described` holds the `label_rule` JSON of the job's first `job_prior_questions` questions (None or
    "" for one that failed or stored none). The prior is the median recovery rate they learned,
    over the questions whose rule learned from at least one decided state; the median, because a
    question whose correct prefixes all sit far below their reference can fit a high rate. None (keep
    `recovery_prior`) unless the rule is sequential and at least half of them learned something.
    Linear in the stored text."""
    if job_prior_count(search) <= 0:
        return None
    rates = []
    for text in described:
        if not text:
            continue
        try:
            learned = json.loads(text).get("learned") or {}
            rate, states = float(learned["recovery_rate"]), int(learned["states"])
        except (ValueError, TypeError, KeyError, AttributeError):
            continue  # a row written by another rule or version: it taught nothing
        if states > 0 and math.isfinite(rate):
            rates.append(rate)
    if not rates or 2 * len(rates) < search.job_prior_questions:
        return None
    return min(max(statistics.median(rates), 1e-4), 0.5)


def with_job_prior(search: SearchSpec, rate: float | None) -> SearchSpec:
    """The search settings for a question after the job's first ones: their recovery rate as the prior."""
    if rate is None:
        return search
    return search.model_copy(update={"recovery_prior": rate, "recovery_prior_weight": search.job_prior_weight})


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
