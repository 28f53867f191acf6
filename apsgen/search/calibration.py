"""Calibration: what a job's policy does after a wrong step, measured once before labelling.

How often a solution prefix that already went wrong still ends at the right answer (its recovery)
is mostly the policy's habit, and it differs from question to question. One question's evidence
cannot always tell a correct prefix of low value from a wrong one that recovers, so the label rule
judges every question against the job's *distribution* of recovery rates, measured here:

1. A seeded random sample of the job's questions (`search.calibration_questions`, at most a quarter
   of the job, drawn by hashing
   each problem id with the job seed: never by input order, so a dataset sorted by source or
   difficulty gives the same sample as a shuffled one) is searched with the prior
   (`search.recovery_prior`), at most `search.calibration_searches` searches each.
2. Each sampled question's own-recovery probes (`OwnRecovery`: k fresh rollouts at up to
   `search.own_recovery_probes` prefixes that are wrong by a false equation, drawn before its
   search) measure how often a prefix that has gone wrong still ends right, without the rule having
   chosen the prefix. Where fewer than MIN_QUESTIONS sampled questions have such prefixes (a policy
   that never writes a false equation, step checks off), a question without them has up to
   PROBES_PER_QUESTION of the first errors its searches located (with at least MIN_ROOM steps
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
and digest. Too little evidence (fewer than `MIN_QUESTIONS` informative questions) falls back to the
prior, and says so. The calibration searches' own labels are not kept: every question, the sampled
ones included, is labelled against the finished calibration, so a label never depends on which
questions came first.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from apsgen.config import SearchSpec
from apsgen.problem import Problem
from apsgen.search.mc_stats import MCStats

FILE = "calibration.json"
MIN_QUESTIONS = 4  # informative questions below which the sample says too little
MIN_WRONG_ROLLOUTS = 4  # graded fresh rollouts at wrong prefixes a question needs to be informative
PROBES_PER_QUESTION = 4  # located first errors probed per calibration question
SAMPLE_SHARE = 4  # the sample is at most 1/4 of the job
MIN_ROOM = 2  # ...with at least this many steps after them on their path
CONCENTRATION_RANGE = (1.0, 256.0)  # a Beta(a, b) with a + b in this range


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
    job_fingerprint: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # the job's label settings it was made for
    cost: dict[str, float] = field(default_factory=dict)  # rollouts, tokens, wall and idle time

    @classmethod
    def prior(cls, search: SearchSpec, reason: str = "no calibration") -> Calibration:
        return cls(search.recovery_prior, search.recovery_prior_weight, "prior", reason=reason)

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
        return cls(**d)

    def render(self) -> str:
        if self.source == "prior":
            return (f"recovery prior {self.recovery_mean:.4g} (concentration {self.recovery_concentration:g}): "
                    f"{self.reason}")
        rates = sorted(self.per_question)
        spread = f", questions' rates {rates[0]:.3g}..{rates[-1]:.3g}" if rates else ""
        return (f"recovery {self.recovery_mean:.4g} on average, concentration {self.recovery_concentration:.3g} "
                f"(from {self.informative} of {self.sampled} sampled questions, {self.states} states{spread})")


@dataclass(frozen=True)
class OwnRecovery:
    """What one question shows of its own recovery before its search: fresh rollouts at prefixes
    that are wrong by their text (a false equation, with room left to recover), one
    (clean successes, graded, reference) per prefix. Whether such a prefix still ends right is the
    question's recovery, seen without the label rule having chosen the prefix (a located first
    error was chosen *because* it rarely succeeded). The rule takes it as evidence about the
    question's rate, with the job's distribution as the prior: a question that recovers far more
    often than the job stops passing its wrong prefixes as correct, one that never does is judged
    more decisively."""

    probes: tuple[tuple[int, int, float], ...] = ()

    def summary(self) -> dict[str, int]:
        return {"probes": len(self.probes), "successes": sum(p[0] for p in self.probes),
                "graded": sum(p[1] for p in self.probes)}


def calibration_sample(problems: Sequence[Problem], size: int, seed: int) -> list[Problem]:
    """`size` problems drawn by a seeded hash of their ids: the same set whatever the input order."""
    def key(p: Problem) -> str:
        return hashlib.blake2b(f"calibration\x1f{seed}\x1f{p.id}".encode(), digest_size=8).hexdigest()

    return sorted(problems, key=key)[:size]


def sample_size(n_problems: int, search: SearchSpec) -> int:
    """`calibration_questions`, but never more than a quarter of the job: a small job is not paid
    for twice (its sample may then be too small to say anything, and the prior is kept)."""
    return min(search.calibration_questions, n_problems // SAMPLE_SHARE)


def too_small(n_problems: int, size: int) -> str | None:
    """Why a sample of `size` cannot say anything (then it is not searched at all), or None."""
    if size >= MIN_QUESTIONS:
        return None
    return (f"the job's {n_problems} questions give a calibration sample of {size} (at most a quarter "
            f"of the job; at least {MIN_QUESTIONS} needed): the prior is kept")


def calibration_search(search: SearchSpec) -> SearchSpec:
    """The settings the calibration searches run with: the job's, fewer searches per question."""
    return search.model_copy(update={"max_searches": min(search.max_searches, search.calibration_searches)})


def needs_calibration(search: SearchSpec) -> bool:
    return search.label_rule == "sequential" and search.mode != "per_step_mc" and search.calibration_questions > 0


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


async def recovery_probes(ctx: Any, result: Any, per_question: int) -> list[tuple[int, int, int, int, float, float]]:
    """Fresh rollouts at up to `per_question` of the first errors a calibration search located.

    A located first error is a prefix that has just gone wrong, and its parent the last correct
    prefix before it. Their own rollouts decided that, so they are biased (a wrong prefix was
    called wrong *because* it rarely succeeded); k fresh rollouts at each are not. Returns
    (successes, graded) at the wrong prefix, (successes, graded) at its parent and the parent's
    reference value, and the wrong prefix's reference value, per probed error; the cost is added
    to `result`."""
    # Only errors with room left to recover from: a wrong last step cannot recover, so probing it
    # says nothing about recovery, and on a question whose wrong paths recover often the errors the
    # search locates are exactly those (the earlier wrong prefixes looked correct).
    states = ctx.dag.states()
    def room(step: Any) -> int:
        full = step.prefix + step.step_text
        deepest = max((s.depth for s in states if s.prefix.startswith(full)), default=step.step_index + 1)
        return deepest - (step.step_index + 1)

    firsts = sorted((s for s in result.steps if s.is_first_error and room(s) >= MIN_ROOM),
                    key=lambda s: s.node_id)[:per_question]
    before = (ctx.cost.n_rollouts, ctx.cost.n_policy_calls, ctx.cost.generated_tokens, ctx.cost.prompt_tokens)
    by_id = {s.node_id: s for s in result.steps}
    out = []
    for step in firsts:
        state = ctx.dag.get(step.prefix + step.step_text)
        if state is None or state.parent is None or state.parent.is_root:
            continue
        parent = by_id.get(state.parent.node_id)
        if parent is None or parent.reference_value is None:
            continue
        wrong = await ctx.sample(state, ctx.search.k)
        right = await ctx.sample(state.parent, ctx.search.k)
        ref = step.reference_value if step.reference_value is not None else parent.reference_value
        out.append((*_graded(wrong), *_graded(right), parent.reference_value, ref))
    result.n_rollouts += ctx.cost.n_rollouts - before[0]
    result.n_policy_calls += ctx.cost.n_policy_calls - before[1]
    result.generated_tokens += ctx.cost.generated_tokens - before[2]
    result.prompt_tokens += ctx.cost.prompt_tokens - before[3]
    return out


def _graded(rollouts: list[Any]) -> tuple[int, int]:
    """(clean successes, graded), as the label rule counts them."""
    return MCStats.from_rollouts(rollouts, "wrong").graded


def _recovery_fit(probes: list[tuple[int, int, int, float]], relative: bool) -> tuple[float, float, float]:
    """Maximum-likelihood Beta(m k, (1 - m) k) of rho over questions, each question's fresh probes
    (question, successes, graded, reference) drawn at rho x reference (`relative`) or at rho:
    (mean, concentration, log-likelihood). The integral over rho is a fixed grid in log rho, so the
    work is linear in the probes."""
    lo_k, hi_k = CONCENTRATION_RANGE
    rhos = [math.exp(math.log(1e-4) + (i + 0.5) * (math.log(0.999) - math.log(1e-4)) / 64) for i in range(64)]
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
    for i in range(40):
        m = math.exp(math.log(1e-3) + i * (math.log(0.6) - math.log(1e-3)) / 39)
        for j in range(24):
            kappa = math.exp(math.log(lo_k) + j * (math.log(hi_k) - math.log(lo_k)) / 23)
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


def fit_calibration(probes: Sequence[list[tuple[int, int, int, int, float, float]]], search: SearchSpec,
                    method: str = "located first errors") -> Calibration:
    """The job's recovery distribution from the sampled questions' fresh probes (one list per
    question): a Beta of rho fitted by maximum likelihood, so the spread between questions is
    measured, not assumed. `method` names where the probes were drawn."""
    flat = [(q, p[0], p[1], p[5]) for q, ps in enumerate(probes) for p in ps if p[1] > 0]
    graded = {}
    for q, _, n, _ in flat:
        graded[q] = graded.get(q, 0) + n
    useful = [q for q, n in graded.items() if n >= MIN_WRONG_ROLLOUTS]
    right = sum(p[2] for ps in probes for p in ps)
    expected = sum(p[3] * p[4] for ps in probes for p in ps)
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
                      "probes_per_question": PROBES_PER_QUESTION,
                      "correct_scale": round(right / expected, 4) if expected else None},
    }
    if len(useful) < MIN_QUESTIONS:
        reason = (f"only {len(useful)} of {len(probes)} sampled questions had first errors to probe "
                  f"(at least {MIN_QUESTIONS} needed): the prior is kept")
        return Calibration(search.recovery_prior, search.recovery_prior_weight, "prior", reason=reason, **common)
    keep = set(useful)
    kept = [x for x in flat if x[0] in keep]
    fits = {model: _recovery_fit(kept, model == "relative") for model in ("relative", "absolute")}
    model = max(fits, key=lambda m: fits[m][2])
    mean, kappa, _ = fits[model]
    common["estimator"]["log_likelihood"] = {m: round(f[2], 3) for m, f in fits.items()}
    return Calibration(mean, kappa, "calibrated", recovery_model=model, **common)


def fit_from_results(results: Iterable[Any], search: SearchSpec) -> Calibration:
    """`fit_calibration` over calibration search results (None for a question that failed).

    Fitted on the questions' own-recovery probes (prefixes wrong by a false equation, chosen before
    any label: an unbiased measure of recovery, and the evidence each question's posterior is
    built from) when at least MIN_QUESTIONS sampled questions have them; else on every question's
    probes, its own or, where it had none, those at its located first errors (chosen because they
    rarely succeeded, so they understate recovery on the questions that recover most)."""
    done = [r for r in results if r is not None]
    own = [r.own_probes for r in done]
    if sum(sum(p[1] for p in ps) >= MIN_WRONG_ROLLOUTS for ps in own) >= MIN_QUESTIONS:
        return fit_calibration(own, search, "prefixes wrong by a false equation")
    return fit_calibration([r.own_probes or r.recovery_probes for r in done], search,
                           "prefixes wrong by a false equation, else located first errors")


async def search_calibrated(
    problems: Sequence[Problem],
    search: SearchSpec,
    seed: int,
    one: Callable[[Problem, SearchSpec, Calibration | None, bool], Awaitable[Any]],
) -> tuple[list[Any], Calibration | None, list[Any]]:
    """Search `problems` in one process as the driver does a job: calibrate on the seeded sample,
    then search every problem against that calibration. `one(problem, settings, calibration,
    calibrating)` searches one problem (None for one that failed). Returns (results in input order, the
    calibration or None when the rule needs none, the calibration searches' results)."""
    import asyncio

    if not needs_calibration(search):
        return list(await asyncio.gather(*(one(p, search, None, False) for p in problems))), None, []
    sample = calibration_sample(problems, sample_size(len(problems), search), seed)
    if (reason := too_small(len(problems), len(sample))) is not None:
        calibration = Calibration.prior(search, reason)
        return list(await asyncio.gather(*(one(p, search, calibration, False) for p in problems))), calibration, []
    cal_results = list(await asyncio.gather(*(one(p, calibration_search(search), None, True) for p in sample)))
    calibration = fit_from_results(cal_results, search)
    results = list(await asyncio.gather(*(one(p, search, calibration, False) for p in problems)))
    return results, calibration, cal_results
