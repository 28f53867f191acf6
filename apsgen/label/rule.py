"""The label rule: the one place that decides whether a solution prefix is still correct.

Given the rollout counts of a state (its `MCStats`) and a reference value, a rule answers
`correct`, `wrong` or `undecided`, and how many more rollouts it wants before answering. The
binary search, the pool's admission test, the per-step MC baseline, the stored verdict and the
exports all ask this object, so a label means the same thing everywhere.

Rules (`label.rule`):

- `paper`: MC > 0 is correct, MC = 0 wrong (Luo et al. 2024). One lucky rollout from a prefix that
  already went wrong makes it "correct", so this rule gets worse as searches grow.
- `threshold`: MC > `label.mc_threshold` is correct.
- `sequential` (default): a sequential probability ratio test, `decide(evidence, reference,
  calibration, params)`, a pure function: the same inputs always give the same verdict, whatever
  order probes finish in and whichever questions came first. "Correct": the prefix succeeds like
  a correct prefix at its depth (`correct_ratio` x the reference, the expected value of a correct
  prefix there, interpolated between the question's root value and a finished solution). "Wrong":
  it went wrong and succeeds only by recovering, at a rate drawn from the job's recovery
  distribution (`apsgen.label.calibration`: measured on a seeded sample of the job before
  labelling; absolute, or relative to the reference, whichever fits the probes), its mean lifted
  by `recovery_margin` and cut off at half a correct prefix's rate. The wrong hypothesis is that
  distribution's binomial mixture, so where recovery differs widely between questions one right
  completion proves less than where it never happens. A question that showed its own recovery
  before its search (`OwnRecovery`: fresh rollouts at prefixes wrong by a false equation) is judged
  against its posterior instead, the job's distribution its prior, cut off at `own_cap_share` of a
  correct prefix's rate: where its wrong prefixes end right as often as correct ones, nothing is
  decided there by rollouts. An undecided test asks for more rollouts on
  the same prefix (one request, a prefix-cache hit: about as many as it expects to need, k/4 to
  k), but only while the budget left to `k_max` can still settle it with a fair chance
  (`futility`); at the last top-up it takes the likelier hypothesis only where a correct prefix
  succeeds at least `decisive_ratio` times as often as a wrong one, else the probe stays
  `undecided`, and an undecided probe ends its binary search without a label rather than guess.
  Every constant is in `RuleParams`, recorded in each row's `label_rule` JSON with the
  calibration's summary and digest.

Evidence is only what the verifier graded: truncated, unparseable and timed-out rollouts never
count as wrong for a decision (all-invalid evidence is `undecided`), whatever
`search.invalid_rollouts` does to the stored MC value. A success is a *clean* one: a right answer
reached through a step that shows an error by its text (a false equation, a retraction) is a
recovery, and counts as a failure of the prefix (`MCStats.n_correct_flawed`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache

from apsgen.config import Labelling
from apsgen.label.calibration import Calibration
from apsgen.label.decision import Decision
from apsgen.label.evidence import MCStats
from apsgen.label.probes import OwnRecovery

def graded(mc: MCStats) -> tuple[int, int]:
    """(clean successes, graded) rollouts: of the ones whose final answer the verifier could judge,
    those that reached the right answer without a step that shows an error by its text (a right
    answer after a false equation or a retraction is a recovery, not evidence for the prefix)."""
    return mc.graded


class LabelRule:
    """Base: subclasses implement `decide`; pool admission defaults to "decided correct, MC < 1"."""

    name = "base"

    def __init__(self, settings: Labelling) -> None:
        self.settings = settings

    def params(self) -> dict[str, float | int | str]:
        return {}

    def describe(self, own: OwnRecovery | None = None) -> str:
        """The rule and its parameters as JSON, stored with every verdict."""
        return json.dumps({"rule": self.name, **self.params()}, sort_keys=True)

    def decide(self, mc: MCStats, reference: float | None, own: OwnRecovery | None = None) -> Decision:
        raise NotImplementedError

    def admits(self, mc: MCStats, reference: float | None, own: OwnRecovery | None = None) -> bool:
        """May this (non-root) state's wrong rollouts seed binary searches?"""
        value = mc.value
        return value is not None and value < 1 and self.decide(mc, reference, own).verdict == "correct"

    def admits_root(self, mc: MCStats) -> bool:
        """The empty prefix cannot hold an error: any wrong rollout from it is searchable."""
        return True

    def max_per_state(self) -> int | None:
        """Wrong rollouts one non-root state may put in the pool (None: no limit)."""
        return self.settings.search.pool_max_per_state

    def stores_allgood(self, root_value: float | None, own: OwnRecovery | None = None) -> tuple[bool, float | None]:
        """(may the question's right-answer solutions be stored as all-good paths, the risk that
        decided it): always, for the paper's rules."""
        return True, None

    def undecidable(self, root_value: float | None, own: OwnRecovery | None = None) -> bool:
        """Can rollouts not tell this question's wrong prefixes from its correct ones? Never, for
        the paper's rules."""
        return False



class ThresholdRule(LabelRule):
    """MC > a threshold is correct; no evidence (nothing graded, or every rollout excluded) is undecided.
    The reference plays no part, so the verdict stores none."""

    name = "threshold"

    def threshold(self) -> float:
        return self.settings.label.mc_threshold  # type: ignore[union-attr]  # the threshold rule's

    def pool_floor(self) -> float:
        label = self.settings.label
        return max(label.mc_threshold, label.pool_min_mc)  # type: ignore[union-attr]

    def params(self) -> dict[str, float | int | str]:
        label = self.settings.label
        return {"mc_threshold": label.mc_threshold, "pool_min_mc": label.pool_min_mc}  # type: ignore[union-attr]

    def decide(self, mc: MCStats, reference: float | None, own: OwnRecovery | None = None) -> Decision:
        _, n = graded(mc)
        value = mc.value
        if value is None or (n == 0 and mc.source == "rollouts"):
            return Decision("undecided")
        return Decision("correct" if value > self.threshold() else "wrong")

    def admits(self, mc: MCStats, reference: float | None, own: OwnRecovery | None = None) -> bool:
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


@dataclass(frozen=True)
class RuleParams:
    """Every number the sequential rule uses, frozen: `describe()` and the fingerprint hold all of it.

    The first seven come from the job's settings (`search.k` and the `label` section, built in
    `from_settings`); the rest are fixed by the design and recorded so a stored label says exactly
    what decided it (docs/labels.md has the formulas and every field)."""

    k: int = 8
    k_max: int = 32
    correct_ratio: float = 0.6
    recovery_margin: float = 1.5
    false_correct_rate: float = 0.05
    false_wrong_rate: float = 0.1
    pool_evidence: float = 1.25
    # A correct prefix's success rate is taken in [reference_floor, q1_cap].
    reference_floor: float = 1e-3
    q1_cap: float = 0.95
    # A wrong prefix's mean success rate is never assumed below q0_floor (where the policy never
    # recovers one right completion is then nearly proof, the paper's rule, exact there) nor above
    # q0_cap_share x q1 (the two hypotheses must stay apart for the test to mean anything).
    q0_floor: float = 0.0005
    q0_cap_share: float = 0.5
    # On a question with its own recovery probes (`OwnRecovery`), the cut-off is this share
    # instead: the question's posterior, not the job's wide prior, says how well its wrong prefixes
    # do, and where they do as well as correct ones nothing is decided by rollouts there.
    own_cap_share: float = 1.0
    # At the last top-up, take the likelier hypothesis only where a correct prefix succeeds at
    # least this many times as often as a wrong one; elsewhere the probe stays undecided.
    decisive_ratio: float = 8.0
    # A top-up is at least this share of k (one request per top-up), and is not bought when the
    # chance that the probe is decided by k_max, at the success rate seen so far, is below
    # `futility`: an ambiguous probe stops early instead of running to k_max.
    top_up_min_share: float = 0.25
    futility: float = 0.1
    # The wrong hypothesis's recovery distribution is integrated on this many points of rho,
    # spaced evenly in log rho over (grid_low, 1).
    grid_points: int = 48
    grid_low: float = 1e-5
    # A state judged without a reference (estimated, never probed by a search) is judged against
    # this one; extra rollouts are bought as if at least this share of them will grade.
    default_reference: float = 0.5
    graded_share_floor: float = 0.5
    # A question's own-recovery probes are prefixes with at least this many steps after them on
    # their solution (room to recover).
    probe_min_room: int = 2
    # A question's right-answer solutions are stored as all-good paths only where the chance that
    # one reached its answer through a wrong step (`allgood_risk`) is at most this.
    allgood_max_risk: float = 0.05
    # A question whose own probes say its wrong prefixes succeed at least this share as often as
    # correct ones (at the root's value) is not searched: rollouts cannot tell its prefixes apart.
    undecidable_share: float = 0.5

    @classmethod
    def from_settings(cls, settings: Labelling) -> RuleParams:
        """The one place the rule's numbers are built from the job's settings."""
        label = settings.label
        assert label.rule == "sequential", label
        return cls(
            k=settings.search.k,
            k_max=label.k_max,
            correct_ratio=label.correct_ratio,
            recovery_margin=label.recovery_margin,
            false_correct_rate=label.false_correct_rate,
            false_wrong_rate=label.false_wrong_rate,
            pool_evidence=label.pool_evidence,
        )

    def bounds(self) -> tuple[float, float]:
        """Wald's bounds on the log-likelihood ratio: at or above the first, correct; at or below the
        second, wrong."""
        a, b = self.false_correct_rate, self.false_wrong_rate
        return math.log((1 - b) / a), math.log(b / (1 - a))


def _clip(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)


def hypotheses(reference: float, calibration: Calibration, params: RuleParams) -> tuple[float, float, float, float]:
    """(ref, q1, alpha, beta). A correct prefix succeeds at q1 = correct_ratio x ref; a wrong one at
    rho x ref, where rho, the share of a correct prefix's value a wrong prefix keeps (it recovers,
    then must still finish right), is drawn from the job's recovery distribution Beta(alpha, beta)
    with its mean lifted by the margin and cut off at q0_cap_share x correct_ratio (see `_wrong_grid`)."""
    ref = _clip(reference, params.reference_floor, 1.0)
    q1 = _clip(params.correct_ratio * ref, params.reference_floor, params.q1_cap)
    scale = ref if calibration.recovery_model == "relative" else 1.0
    cap = params.q0_cap_share * q1 / scale
    mean = _clip(params.recovery_margin * calibration.recovery_mean, 1e-6, cap)
    kappa = calibration.recovery_concentration
    return scale, q1, mean * kappa, (1 - mean) * kappa


@lru_cache(maxsize=4096)
def _wrong_grid(a: float, b: float, cap: float, own: tuple[tuple[int, int, float], ...] = (),
                points: int = 48, low: float = 1e-5) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The recovery distribution Beta(a, b) as `points` values of rho spaced evenly in log rho
    over (`low`, 1), with their normalised log weights; values above `cap` are moved to it. A
    wrong prefix is never assumed to keep more than q0_cap_share of a correct one's chance (else a
    prefix doing as well as a correct one could be explained away), but the questions that recover
    that often keep their weight there: a wide distribution stays wary of a lone success.

    `own`: the question's own recovery probes, (clean successes, graded, scale) each, a prefix
    wrong by its text succeeding at rho x scale: the weights are then the question's posterior
    (the job's distribution is its prior), taken at the uncapped rho."""
    lo = math.log(low)
    step = -lo / points
    logs = [lo + (i + 0.5) * step for i in range(points)]
    raw = [a * u + (b - 1) * math.log1p(-math.exp(u)) for u in logs]  # density x rho (d rho = rho du)
    for c, n, scale in own:
        for i, u in enumerate(logs):
            p = _clip(math.exp(u) * scale, 1e-6, 1 - 1e-6)
            raw[i] += c * math.log(p) + (n - c) * math.log1p(-p)
    top = max(raw)
    total = math.log(sum(math.exp(x - top) for x in raw)) + top
    return tuple(min(math.exp(u), cap) for u in logs), tuple(x - total for x in raw)


def _own_key(own: OwnRecovery | None, calibration: Calibration) -> tuple[tuple[int, int, float], ...]:
    """The question's probes as the grid takes them: (successes, graded, scale) under the
    calibration's recovery model."""
    if own is None:
        return ()
    relative = calibration.recovery_model == "relative"
    return tuple((p.successes, p.graded, round(p.reference, 6) if relative else 1.0) for p in own.graded())


def _grid(reference: float, calibration: Calibration, params: RuleParams, own: OwnRecovery | None
          ) -> tuple[float, float, tuple[float, ...], tuple[float, ...]]:
    """(scale, q1, the wrong hypothesis' rho grid, its log weights) at this reference."""
    scale, q1, a, b = hypotheses(reference, calibration, params)
    key = _own_key(own, calibration)
    share = params.own_cap_share if key else params.q0_cap_share  # probes that graded nothing say nothing
    rhos, weights = _wrong_grid(round(a, 9), round(b, 9), round(share * q1 / scale, 12), key,
                                params.grid_points, params.grid_low)
    return scale, q1, rhos, weights


def log_likelihood_ratio(c: int, n: int, reference: float, calibration: Calibration, params: RuleParams,
                         own: OwnRecovery | None = None) -> float:
    """log P(c of n | correct) / P(c of n | wrong): binomial at q1 against the binomial mixture of
    the (cut-off) recovery distribution, the question's posterior when it has `own` probes; the
    binomial coefficients cancel. Increasing in c."""
    scale, q1, rhos, weights = _grid(reference, calibration, params, own)
    correct = c * math.log(q1) + (n - c) * math.log1p(-q1)
    terms = []
    for rho, w in zip(rhos, weights):
        q = max(rho * scale, params.q0_floor)
        terms.append(w + c * math.log(q) + (n - c) * math.log1p(-q))
    top = max(terms)
    wrong = top + math.log(sum(math.exp(t - top) for t in terms))
    return correct - wrong


def wrong_mean(reference: float, calibration: Calibration, params: RuleParams, own: OwnRecovery | None = None) -> float:
    """A wrong prefix's mean success rate at this reference (under the question's posterior when it
    has `own` probes)."""
    if not _own_key(own, calibration):
        scale, _, a, b = hypotheses(reference, calibration, params)
        return max(params.q0_floor, scale * a / (a + b))
    scale, _, rhos, weights = _grid(reference, calibration, params, own)
    return max(params.q0_floor, scale * sum(r * math.exp(w) for r, w in zip(rhos, weights)))


def _chance_to_decide(c: int, n: int, more: int, reference: float, calibration: Calibration,
                      params: RuleParams, own: OwnRecovery | None = None) -> float:
    """P(the test is decided after `more` extra graded rollouts), their successes drawn at the rate
    seen so far (Jeffreys-smoothed). Linear in `more`; the path's intermediate crossings are ignored,
    which only understates the chance."""
    if more <= 0:
        return 0.0
    upper, lower = params.bounds()
    p = (c + 0.5) / (n + 1.0)
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for x in range(more + 1):
        score = log_likelihood_ratio(c + x, n + more, reference, calibration, params, own)
        if score >= upper or score <= lower:
            log_pmf = (math.lgamma(more + 1) - math.lgamma(x + 1) - math.lgamma(more - x + 1)
                       + x * log_p + (more - x) * log_q)
            total += math.exp(log_pmf)
    return total


def allgood_risk(root_value: float | None, calibration: Calibration, own: OwnRecovery | None = None) -> float | None:
    """The chance that a solution which reached the right answer went through a wrong step.

    A solution either has no wrong step (and ends right) or goes wrong somewhere and still ends right
    at the rate s a just-wrong prefix does: the root's value p = (1 - e) + e s gives the share e of
    solutions with an error, and P(wrong step | right answer) = e s / p = s (1 - p) / (p (1 - s)).
    s is the question's own probes' clean success rate (Jeffreys-smoothed) where it has some, else
    the job's recovery distribution's mean (taken at a mid-solution reference, p ** 0.5, under the
    relative model). None when nothing is known (no root value)."""
    if root_value is None or root_value <= 0:
        return None
    p = min(root_value, 1.0)
    graded = own.graded() if own is not None else ()
    if graded:
        s = (sum(x.successes for x in graded) + 0.5) / (sum(x.graded for x in graded) + 1.0)
    else:
        scale = p**0.5 if calibration.recovery_model == "relative" else 1.0
        s = calibration.recovery_mean * scale
    s = min(s, 1 - 1e-9)
    # Above 1 where the root does worse than a wrong prefix (p < s): every right answer is suspect.
    return min(1.0, s * (1 - p) / (p * (1 - s)))


def decide(evidence: MCStats, reference: float | None, calibration: Calibration, params: RuleParams,
           own: OwnRecovery | None = None) -> Decision:
    """The sequential rule as a function of what it is given: the same inputs, the same verdict.

    `evidence` is one prefix's rollouts (only graded ones count), `reference` the expected value
    of a correct prefix at its depth, `calibration` the job's recovery distribution, `own` what
    the question showed of its own recovery before its search (None: nothing)."""
    if evidence.source in ("wrong_solution", "correct_solution"):
        return Decision("correct" if evidence.source == "correct_solution" else "wrong", reference=reference)
    ref = params.default_reference if reference is None else reference
    c, n = graded(evidence)
    score = log_likelihood_ratio(c, n, ref, calibration, params, own) if n else 0.0
    upper, lower = params.bounds()
    if n and score >= upper:
        return Decision("correct", reference=ref, score=score)
    if n and score <= lower:
        return Decision("wrong", reference=ref, score=score)
    left = params.k_max - evidence.n_rollouts
    more = min(top_up(evidence, ref, score, calibration, params, own), left)
    if n and more > 0:
        # Would the rest of the budget settle it? If not, stop here rather than pay for k_max.
        graded_share = max(n / evidence.n_rollouts, params.graded_share_floor)
        if _chance_to_decide(c, n, int(left * graded_share), ref, calibration, params, own) < params.futility:
            more = 0
    if more <= 0 and n:
        _, q1, _, _ = hypotheses(ref, calibration, params)
        if q1 >= params.decisive_ratio * wrong_mean(ref, calibration, params, own):  # wrong ones almost never succeed
            return Decision("correct" if score > 0 else "wrong", reference=ref, score=score)
    return Decision("undecided", more=max(0, more), reference=ref, score=score)


def top_up(evidence: MCStats, reference: float, score: float, calibration: Calibration, params: RuleParams,
           own: OwnRecovery | None = None) -> int:
    """Rollouts to ask for next: about as many as the test expects to need at the success rate seen
    so far (between top_up_min_share x k and k), so a probe one rollout short is not sold k."""
    k = params.k
    c, n = graded(evidence)
    if n == 0:
        return k
    _, q1, _, _ = hypotheses(reference, calibration, params)
    q0 = _clip(wrong_mean(reference, calibration, params, own), params.q0_floor, params.q0_cap_share * q1)
    p = c / n
    drift = p * math.log(q1 / q0) + (1 - p) * math.log((1 - q1) / (1 - q0))
    if abs(drift) < 1e-9:
        return k
    upper, lower = params.bounds()
    distance = (upper - score) if drift > 0 else (score - lower)
    # Extra rollouts that grade nothing (truncated, unparseable) are paid for too.
    graded_share = max(n / evidence.n_rollouts, params.graded_share_floor) if evidence.n_rollouts else 1.0
    need = math.ceil(distance / abs(drift) / graded_share)
    return min(k, max(math.ceil(k * params.top_up_min_share), need))


class SequentialRule(LabelRule):
    """A Wald sequential test on the graded rollouts of one prefix (see the module docstring): a
    thin holder of the job's calibration and parameters around the pure `decide`."""

    name = "sequential"

    def __init__(self, settings: Labelling, calibration: Calibration | None = None) -> None:
        super().__init__(settings)
        self.rule_params = RuleParams.from_settings(settings)
        self.calibration = calibration if calibration is not None else Calibration.prior(settings.calibration)

    def params(self) -> dict[str, float | int | str]:
        return dict(asdict(self.rule_params))

    def describe(self, own: OwnRecovery | None = None) -> str:
        out: dict[str, object] = {"rule": self.name, **self.params(), "calibration": self.calibration.summary()}
        if own is not None:
            out["own_recovery"] = own.summary()
        return json.dumps(out, sort_keys=True)

    def bounds(self) -> tuple[float, float]:
        return self.rule_params.bounds()

    def llr(self, mc: MCStats, reference: float, own: OwnRecovery | None = None) -> float:
        c, n = graded(mc)
        return log_likelihood_ratio(c, n, reference, self.calibration, self.rule_params, own)

    def decide(self, mc: MCStats, reference: float | None, own: OwnRecovery | None = None) -> Decision:
        return decide(mc, reference, self.calibration, self.rule_params, own)

    def undecidable(self, root_value: float | None, own: OwnRecovery | None = None) -> bool:
        # Only on the question's own evidence: the job's distribution alone never rules a question out.
        if root_value is None or own is None or not own.graded():
            return False
        _, q1, _, _ = hypotheses(root_value, self.calibration, self.rule_params)
        return wrong_mean(root_value, self.calibration, self.rule_params, own) >= self.rule_params.undecidable_share * q1

    def stores_allgood(self, root_value: float | None, own: OwnRecovery | None = None) -> tuple[bool, float | None]:
        risk = allgood_risk(root_value, self.calibration, own)
        return risk is not None and risk <= self.rule_params.allgood_max_risk, risk

    def admits(self, mc: MCStats, reference: float | None, own: OwnRecovery | None = None) -> bool:
        # Stricter than the decision: a state whose wrong rollouts seed searches must be correct
        # with more evidence, since every search started there inherits the doubt.
        if reference is None or mc.value is None or mc.value >= 1:
            return False
        return self.llr(mc, reference, own) >= self.rule_params.pool_evidence * self.bounds()[0]


RULES: dict[str, type[LabelRule]] = {r.name: r for r in (PaperRule, ThresholdRule, SequentialRule)}


def make_rule(settings: Labelling, calibration: Calibration | None = None) -> LabelRule:
    """The job's label rule; the sequential one judges against `calibration` (None: the prior).
    What a question showed of its own recovery is an argument of each call (`decide(..., own)`)."""
    if settings.label.rule == "sequential":
        return SequentialRule(settings, calibration)
    return RULES[settings.label.rule](settings)


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
