"""Calibration: what a job's policy does after a wrong step, measured once before labelling.

How often a solution prefix that already went wrong still ends at the right answer (its recovery)
is mostly the policy's habit, and it differs from question to question. One question's evidence
cannot always tell a correct prefix of low value from a wrong one that recovers, so the label rule
judges every question against the job's *distribution* of recovery rates, measured here:

1. A seeded random sample of the job's questions (`calibration.questions`, at most a quarter
   of the job, drawn by hashing
   each problem id with the job seed: never by input order, so a dataset sorted by source or
   difficulty gives the same sample as a shuffled one) is searched with the prior
   (`calibration.prior`), at most `calibration.searches` searches each.
2. Each sampled question's own-recovery probes (`OwnRecovery`: k fresh rollouts at up to
   `label.own_recovery_probes` prefixes that are wrong by their text or made wrong on purpose, drawn before its
   search) measure how often a prefix that has gone wrong still ends right, without the rule having
   chosen the prefix. Where fewer than `min_questions` sampled questions have such prefixes (a policy
   that never writes a false equation, step checks off), a question without them has up to
   `located_probes` of the first errors its searches located (with at least `min_room` steps
   after them, room to recover) given k fresh rollouts instead, and so does the correct prefix
   before each: the search's own rollouts decided those verdicts, so they are biased; fresh ones
   are not, but the errors were still located *because* they rarely succeeded, so on a question
   that recovers often they understate its recovery.
3. Across questions, a Beta distribution of the recovery rate rho is fitted by maximum likelihood
   over those probes (a grid over its mean and concentration, each question's rho integrated out),
   empirical-Bayes style: the wider recovery varies between questions, the lower the
   concentration, and the less one right completion proves. Rho is taken both absolute (a wrong
   prefix succeeds at rho) and relative to the prefix's reference value (it recovers, then must
   still finish); the likelier model is kept.

The result (`Calibration`) is one small artifact: the driver writes it beside the manifest as
`calibration.json`, a resumed job reuses it, every row's `label_rule` JSON carries its summary
and digest. Too little evidence (fewer than `min_questions` informative questions) falls back to the
prior, and says so. The calibration searches' own labels are not kept: every question, the sampled
ones included, is labelled against the finished calibration, so a label never depends on which
questions came first.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from apsgen.config import CalibrationSpec, Labelling
from apsgen.label.probes import LocatedProbe, Probe
from apsgen.problem import Problem

FILE = "calibration.json"


@dataclass(frozen=True)
class CalibrationParams:
    """Every number that shapes a calibration, recorded in its artifact (`fit_params`)."""

    min_questions: int = 4  # informative questions below which the sample says too little
    min_wrong_rollouts: int = 4  # graded fresh rollouts at wrong prefixes a question needs to be informative
    located_probes: int = 4  # located first errors probed per question where it has no own probes
    sample_share: int = 4  # the sample is at most 1/sample_share of the job
    min_room: int = 2  # a probed first error has at least this many steps after it on its path
    concentration_range: tuple[float, float] = (1.0, 256.0)  # a Beta(a, b) with a + b in this range
    # The maximum-likelihood grids: rho (log-spaced), the mean (log-spaced), the concentration.
    rho_points: int = 64
    rho_range: tuple[float, float] = (1e-4, 0.999)
    mean_points: int = 40
    mean_range: tuple[float, float] = (1e-3, 0.6)
    concentration_points: int = 24


PARAMS = CalibrationParams()


def _record(params: CalibrationParams) -> dict[str, Any]:
    """The parameters as the artifact stores them (through JSON: tuples are lists)."""
    return json.loads(json.dumps(asdict(params)))


@dataclass(frozen=True)
class Calibration:
    """The job's recovery distribution, Beta(mean x concentration, (1 - mean) x concentration)."""

    recovery_mean: float
    recovery_concentration: float
    source: Literal["calibrated", "prior"] = "prior"
    # absolute: a wrong prefix succeeds at r; relative: at rho x its reference (it recovers, then
    # must still finish right). Calibration keeps the likelier on its probes.
    recovery_model: Literal["absolute", "relative"] = "relative"
    reason: str = ""  # why the prior was kept, when it was
    sampled: int = 0  # questions in the calibration sample
    informative: int = 0  # ...whose searches said something about recovery
    states: int = 0
    per_question: tuple[float, ...] = ()  # the sampled questions' fitted rates
    estimator: dict[str, Any] = field(default_factory=dict)
    fit_params: dict[str, Any] = field(default_factory=lambda: _record(PARAMS))
    job_fingerprint: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # the job's label settings it was made for
    cost: dict[str, float] = field(default_factory=dict)  # rollouts, tokens, wall and idle time

    @classmethod
    def prior(cls, spec: CalibrationSpec, reason: str = "no calibration") -> Calibration:
        return cls(spec.prior, spec.prior_weight, "prior", reason=reason)

    def summary(self) -> dict[str, Any]:
        """What every row's label rule records: the distribution, where it came from, the digest."""
        return {
            "recovery_mean": round(self.recovery_mean, 6),
            "recovery_concentration": round(self.recovery_concentration, 4),
            "source": self.source,
            "informative": self.informative,
            "digest": self.digest(),
        }

    def digest(self) -> str:
        core = {"mean": round(self.recovery_mean, 9), "kappa": round(self.recovery_concentration, 6),
                "source": self.source, "rates": [round(r, 9) for r in self.per_question]}
        return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()[:12]

    def to_json(self) -> str:
        d = asdict(self)
        d["per_question"] = list(self.per_question)
        d["digest"] = self.digest()
        return json.dumps(d, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        d = json.loads(text)
        d.pop("digest", None)
        d["per_question"] = tuple(d.get("per_question") or ())
        d.setdefault("fit_params", _record(PARAMS))  # made before the numbers were recorded: these
        return cls(**d)

    def render(self) -> str:
        if self.source == "prior":
            return (f"recovery prior {self.recovery_mean:.4g} (concentration {self.recovery_concentration:g}): "
                    f"{self.reason}")
        rates = sorted(self.per_question)
        spread = f", questions' rates {rates[0]:.3g}..{rates[-1]:.3g}" if rates else ""
        return (f"recovery {self.recovery_mean:.4g} on average, concentration {self.recovery_concentration:.3g} "
                f"(from {self.informative} of {self.sampled} sampled questions, {self.states} states{spread})")


def calibration_sample(problems: Sequence[Problem], size: int, seed: int) -> list[Problem]:
    """`size` problems drawn by a seeded hash of their ids: the same set whatever the input order."""
    def key(p: Problem) -> str:
        return hashlib.blake2b(f"calibration\x1f{seed}\x1f{p.id}".encode(), digest_size=8).hexdigest()

    return sorted(problems, key=key)[:size]


def sample_size(n_problems: int, spec: CalibrationSpec) -> int:
    """`calibration.questions`, but never more than a quarter of the job: a small job is not paid
    for twice (its sample may then be too small to say anything, and the prior is kept)."""
    return min(spec.questions, n_problems // PARAMS.sample_share)


def too_small(n_problems: int, size: int) -> str | None:
    """Why a sample of `size` cannot say anything (then it is not searched at all), or None."""
    if size >= PARAMS.min_questions:
        return None
    return (f"the job's {n_problems} questions give a calibration sample of {size} (at most a quarter "
            f"of the job; at least {PARAMS.min_questions} needed): the prior is kept")


def calibration_search(settings: Labelling) -> Labelling:
    """The settings the calibration searches run with: the job's, fewer searches per question, and
    fresh rollouts at located first errors where a question has no own-recovery probes."""
    search = settings.search
    return settings.with_search(max_searches=min(search.max_searches, settings.calibration.searches),
                                located_probes=PARAMS.located_probes)


def needs_calibration(settings: Labelling) -> bool:
    return settings.sequential and settings.search.mode != "per_step_mc" and settings.calibration.questions > 0


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _recovery_fit(probes: list[tuple[int, int, int, float]], relative: bool,
                  params: CalibrationParams = PARAMS) -> tuple[float, float, float]:
    """Maximum-likelihood Beta(m k, (1 - m) k) of rho over questions, each question's fresh probes
    (question, successes, graded, reference) drawn at rho x reference (`relative`) or at rho:
    (mean, concentration, log-likelihood). The integral over rho is a fixed grid in log rho, so the
    work is linear in the probes."""
    lo_k, hi_k = params.concentration_range
    lo_r, hi_r = params.rho_range
    n_rho = params.rho_points
    rhos = [math.exp(math.log(lo_r) + (i + 0.5) * (math.log(hi_r) - math.log(lo_r)) / n_rho) for i in range(n_rho)]
    # Per question, log P(its probes | rho) on the grid.
    by_q: dict[int, list[float]] = {}
    for q, c, n, ref in probes:
        row = by_q.setdefault(q, [0.0] * len(rhos))
        for i, rho in enumerate(rhos):
            p = min(max(rho * ref if relative else rho, 1e-6), 1 - 1e-6)
            row[i] += c * math.log(p) + (n - c) * math.log1p(-p)
    best, best_ll = (0.1, 8.0), -math.inf
    log_rho = [math.log(r) for r in rhos]
    log_1m = [math.log1p(-r) for r in rhos]
    lo_m, hi_m = params.mean_range
    for i in range(params.mean_points):
        m = math.exp(math.log(lo_m) + i * (math.log(hi_m) - math.log(lo_m)) / (params.mean_points - 1))
        for j in range(params.concentration_points):
            kappa = math.exp(math.log(lo_k) + j * (math.log(hi_k) - math.log(lo_k)) / (params.concentration_points - 1))
            a, b = m * kappa, (1 - m) * kappa
            prior = [a * lr + (b - 1) * l1 for lr, l1 in zip(log_rho, log_1m)]  # x rho: log-spaced grid
            top = max(prior)
            norm = top + math.log(sum(math.exp(x - top) for x in prior))
            ll = 0.0
            for row in by_q.values():
                terms = [x + y for x, y in zip(prior, row)]
                t = max(terms)
                ll += t + math.log(sum(math.exp(v - t) for v in terms)) - norm
            if ll > best_ll:
                best, best_ll = (m, kappa), ll
    return best[0], best[1], best_ll


QuestionProbes = Sequence[Probe | LocatedProbe]


def fit_calibration(probes: Sequence[QuestionProbes], spec: CalibrationSpec,
                    method: str = "located first errors") -> Calibration:
    """The job's recovery distribution from the sampled questions' fresh probes (one list per
    question: own probes, or located first errors with the prefix before each): a Beta of rho
    fitted by maximum likelihood, so the spread between questions is measured, not assumed.
    `method` names where the probes were drawn."""
    wrong = [[p.wrong if isinstance(p, LocatedProbe) else p for p in ps] for ps in probes]
    flat = [(q, p.successes, p.graded, p.reference) for q, ps in enumerate(wrong) for p in ps if p.graded > 0]
    graded: dict[int, int] = {}
    for q, _, n, _ in flat:
        graded[q] = graded.get(q, 0) + n
    useful = [q for q, n in graded.items() if n >= PARAMS.min_wrong_rollouts]
    parents = [p.parent for ps in probes for p in ps if isinstance(p, LocatedProbe)]
    right = sum(p.successes for p in parents)
    expected = sum(p.graded * p.reference for p in parents)
    rates = []
    for q in useful:
        c = sum(x[1] for x in flat if x[0] == q)
        e = sum(x[2] * x[3] for x in flat if x[0] == q)
        rates.append(round(c / e, 6) if e else 0.0)
    common = {
        "sampled": len(probes),
        "informative": len(useful),
        "states": sum(len(ps) for ps in probes),
        "per_question": tuple(rates),
        "estimator": {"method": f"maximum likelihood Beta of rho over fresh rollouts at {method}",
                      "probes_per_question": PARAMS.located_probes,
                      "correct_scale": round(right / expected, 4) if expected else None},
    }
    if len(useful) < PARAMS.min_questions:
        reason = (f"only {len(useful)} of {len(probes)} sampled questions had first errors to probe "
                  f"(at least {PARAMS.min_questions} needed): the prior is kept")
        return Calibration(spec.prior, spec.prior_weight, "prior", reason=reason, **common)
    keep = set(useful)
    kept = [x for x in flat if x[0] in keep]
    fits = {model: _recovery_fit(kept, model == "relative") for model in ("relative", "absolute")}
    model = max(fits, key=lambda m: fits[m][2])
    mean, kappa, _ = fits[model]
    common["estimator"]["log_likelihood"] = {m: round(f[2], 3) for m, f in fits.items()}
    return Calibration(mean, kappa, "calibrated", recovery_model=model, **common)


def fit_from_results(results: Iterable[Any], spec: CalibrationSpec) -> Calibration:
    """`fit_calibration` over the calibration sample's results (None for a question that failed).

    Fitted on the questions' own-recovery probes (prefixes wrong by a false equation, chosen before
    any label: an unbiased measure of recovery, and the evidence each question's posterior is
    built from) when at least `min_questions` sampled questions have them; else on every
    question's probes, its own or, where it had none, those at its located first errors (chosen
    because they rarely succeeded, so they understate recovery on the questions that recover
    most)."""
    done = [r for r in results if r is not None]
    own = [r.own_recovery.graded() if r.own_recovery is not None and r.status == "searched" else () for r in done]
    if sum(sum(p.graded for p in ps) >= PARAMS.min_wrong_rollouts for ps in own) >= PARAMS.min_questions:
        return fit_calibration(own, spec, "prefixes wrong by a false equation or made wrong on purpose")
    return fit_calibration([ps or tuple(r.located_probes) for ps, r in zip(own, done)], spec,
                           "prefixes wrong by a false equation, else located first errors")
