"""A second simulated world, built from how real policies fail rather than from the label rule's model.

`apsgen.worlds.chain` plants exactly what the sequential rule assumes: one recovery rate per
cell, a value curve that falls geometrically with the steps left, every step a computation.
This world breaks each of those assumptions the way small real models do:

- **Word problems, natural-language steps.** A shopkeeper's stock changes day by day; a step
  says "After buying 14 more crates, Ada has 23 + 14 = 37 crates." Some steps only restate the
  question ("On day 2, Ada gives away 9 crates.") or are filler ("Let me keep going."): they
  hold no computation and are never wrong.
- **Heterogeneous recovery.** How often a wrong path still reaches the right answer is the
  question's own, drawn from a wide Beta around the cell's mean (some questions never recover,
  some often do).
- **Self-corrections several steps later.** A wrong path that recovers writes "Wait, I made a
  mistake earlier. The correct count so far is 145 crates." at a later step and goes on right;
  with `announce_recovery` below 1 some (at 0, all) recoveries are silent: the path just carries
  on from the right count, as a policy that ignores its own slip does.
- **Correct steps that make later errors likelier.** After some correct steps (traps) the policy
  errs far more often on the steps that follow: correct prefixes of low value.
- **Several kinds of wrong step:** an arithmetic slip (the equation is wrong), a misread number
  (the equation holds but uses a number the question does not give there), the wrong operation.
- **Wrong paths ramble and are cut off more:** off track, the policy adds hesitant sentences and
  its completions are truncated several times as often.

Everything is derived from (question, prefix, seed), so any process can serve any problem, and
`first_error_offset` gives the planted truth: the first computation whose result differs from
the reference value of its operation (restatements, filler and corrections are never errors).
Steps are paragraphs; prefixes are expected to end at a paragraph (delimiter step mode).
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

from apsgen.policy.base import Sample
from apsgen.problem import Problem
from apsgen.worlds.base import WorldPolicy

_NAMES = ("Ada", "Bo", "Chen", "Dara", "Eli", "Farah", "Gus", "Hana")
_UNITS = ("crates", "jars", "boxes", "bags", "bottles", "packs")
_MULT = {2: "doubles", 3: "triples"}
_Q_START = re.compile(r"starts the week with (\d+) (\w+)")
_Q_OP = re.compile(r"On day \d+, \w+ (buys (\d+) more|gives away (\d+)|sees the number of \w+ (double|triple))")
_COMPUTE = re.compile(r"(-?\d+) ([+\-×]) (\d+) = (-?\d+)")
_CORRECTION = re.compile(r"correct count so far is (-?\d+)")
_CARRY = re.compile(r"^So far, \w+ has (-?\d+) \w+\.")
_SKIP = re.compile(r"^On day \d+, \w+ still has (-?\d+) \w+\.")
_FILLER = ("Let me keep going.", "Now the next day.", "I will track the total carefully.")
_RAMBLE = (
    "Hmm, this number seems large, but let us continue anyway.",
    "I am not completely sure about this, so I will keep going with it.",
    "That looks a bit odd. Let us carry on and see where it leads.",
)


@dataclass(frozen=True)
class StoryWorldSpec:
    """One cell of the world: the mean recovery, the questions' solve-rate range, the rest fixed."""

    recover_mean: float = 0.1
    success_rate: tuple[float, float] = (0.05, 0.5)
    recover_concentration: float = 2.5  # Beta(a, b) with a + b this: wide, as questions differ
    min_steps: int = 4
    max_steps: int = 12
    trap_rate: float = 0.15  # share of correct steps after which errors become likelier
    trap_factor: float = 4.0  # ...this many times likelier, for the next two steps
    restate_rate: float = 0.3  # chance a computation is preceded by a restatement of the question
    filler_rate: float = 0.08
    ramble_rate: float = 0.35  # off track: chance of a hesitant sentence per step
    truncate_rate: float = 0.02
    truncate_rate_wrong: float = 0.12  # off track, completions are cut off more
    unparseable_rate: float = 0.02
    empty_rate: float = 0.01
    announce_recovery: float = 1.0  # share of recoveries written as a retraction; the rest are silent
    # Kinds of wrong step, as weights: an arithmetic slip (a false equation), a misread number (a
    # true equation on the wrong operand), the wrong operation, a miscopied running count (stated
    # without an equation, then computed on), a day's event ignored ("still has"). The story world
    # draws the first three; the silent world never a false equation.
    error_kinds: tuple[float, float, float, float, float] = (0.45, 0.30, 0.25, 0.0, 0.0)
    front_load: float = 1.0  # the first FRONT_STEPS computations err this many times as often (setup errors)
    carry_rate: float = 0.0  # chance the running count is stated after a computation ("So far, ...")


@dataclass(frozen=True)
class StoryPlan:
    name: str
    unit: str
    start: int
    ops: tuple[tuple[str, int], ...]  # ("+", 14), ("-", 9), ("×", 2)
    values: tuple[int, ...]
    error_rate: float
    recover: float
    traps: tuple[bool, ...]  # per step: a correct result here makes the next errors likelier

    @property
    def n_steps(self) -> int:
        return len(self.ops)


def _unit(*parts: object) -> float:
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


FRONT_STEPS = 2
_KINDS = ("slip", "misread", "operation", "carry", "skip")


def _base_rate(success: float, n: int, front_load: float) -> float:
    """The per-step error rate r with which a solution of n computations, the first FRONT_STEPS
    erring at front_load x r, is flawless with probability `success`."""
    m = min(FRONT_STEPS, n)
    lo, hi = 0.0, 1.0 / max(1.0, front_load)
    for _ in range(60):
        r = (lo + hi) / 2
        if (1 - front_load * r) ** m * (1 - r) ** (n - m) > success:
            lo = r
        else:
            hi = r
    return (lo + hi) / 2


def _kind(u: float, weights: tuple[float, ...]) -> str:
    """The kind of wrong step a uniform draw `u` picks by cumulative weight."""
    total = sum(weights)
    acc = 0.0
    for kind, w in zip(_KINDS, weights):
        acc += w / total
        if u < acc:
            return kind
    return next(k for k, w in zip(reversed(_KINDS), reversed(weights)) if w > 0)


def _apply(op: str, v: int, a: int) -> int:
    return v + a if op == "+" else v - a if op == "-" else v * a


def plan_for(question: str, spec: StoryWorldSpec) -> StoryPlan:
    m = _Q_START.search(question)
    ops: list[tuple[str, int]] = []
    for full, add, sub, mult in _Q_OP.findall(question):
        if add:
            ops.append(("+", int(add)))
        elif sub:
            ops.append(("-", int(sub)))
        else:
            ops.append(("×", 2 if mult == "double" else 3))
    if m is None or not ops:
        raise ValueError(f"not a story-world question: {question[:80]!r}")
    name = question.split(" ", 1)[0]
    v, values = int(m.group(1)), []
    for op, a in ops:
        v = _apply(op, v, a)
        values.append(v)
    lo, hi = spec.success_rate
    success = lo + _unit("success", question) * (hi - lo)
    rate = 1.0 - success ** (1.0 / len(ops)) if spec.front_load == 1.0 else _base_rate(success, len(ops), spec.front_load)
    rng = random.Random(f"recover\x1f{question}")
    mean = spec.recover_mean
    recover = 0.0 if mean <= 0 else min(0.9, rng.betavariate(mean * spec.recover_concentration,
                                                             (1 - mean) * spec.recover_concentration))
    traps = tuple(_unit("trap", question, i) < spec.trap_rate for i in range(len(ops)))
    return StoryPlan(name, m.group(2), int(m.group(1)), tuple(ops), tuple(values), rate, recover, traps)


def story_problems(n: int, spec: StoryWorldSpec, seed: int) -> list[Problem]:
    """`n` word problems of min_steps..max_steps days; the gold answer is the final count."""
    from apsgen.problem import problem_id

    rng = random.Random(f"story-problems-{seed}")
    problems = []
    for i in range(n):
        name, unit = rng.choice(_NAMES), rng.choice(_UNITS)
        v = start = rng.randint(5, 40)
        days = []
        for d in range(1, rng.randint(spec.min_steps, spec.max_steps) + 1):
            op = rng.choice(["+", "+", "-", "×"])
            if op == "×" and abs(v) > 400:
                op = "-"
            a = rng.choice([2, 3]) if op == "×" else rng.randint(2, 40)
            if op == "-" and v - a < 0:
                op = "+"
            v = _apply(op, v, a)
            what = (f"buys {a} more {unit}" if op == "+" else f"gives away {a} {unit}" if op == "-"
                    else f"sees the number of {unit} {'double' if a == 2 else 'triple'}")
            days.append(f"On day {d}, {name} {what}.")
        question = (f"{name} starts the week with {start} {unit} (shop {seed}-{i}). " + " ".join(days)
                    + f" How many {unit} does {name} have at the end?")
        problems.append(Problem(problem_id(question, str(v)), question, str(v), dataset="storyworld", row=i))
    return problems


@dataclass
class _Para:
    start: int
    kind: str  # compute | skip (a day's step) | carry (the running count restated) | correction | other
    result: int | None
    result_offset: int | None


def _paragraphs(text: str) -> list[_Para]:
    out = []
    for para in re.finditer(r"[^\n]+", text):
        s = para.group(0)
        m = _COMPUTE.search(s)
        if m is not None:
            out.append(_Para(para.start(), "compute", int(m.group(4)), para.start() + m.start(4)))
            continue
        c = _CORRECTION.search(s)
        if c is not None:
            out.append(_Para(para.start(), "correction", int(c.group(1)), None))
            continue
        for kind, pattern in (("skip", _SKIP), ("carry", _CARRY)):
            found = pattern.search(s)
            if found is not None:
                out.append(_Para(para.start(), kind, int(found.group(1)), para.start() + found.start(1)))
                break
        else:
            out.append(_Para(para.start(), "other", None, None))
    return out


def first_error_offset(question: str, text: str, spec: StoryWorldSpec | None = None) -> int | None:
    """Offset of the first stated count that differs from its reference value: a day's result
    (computed, or a day's event ignored) or the running count restated. Corrections (announced)
    and restatements of the question are never errors."""
    plan = plan_for(question, spec or StoryWorldSpec())
    j = 0
    for p in _paragraphs(text):
        if p.kind in ("compute", "skip"):
            if j >= plan.n_steps or p.result != plan.values[j]:
                return p.result_offset
            j += 1
        elif p.kind == "carry" and p.result != (plan.values[j - 1] if j else plan.start):
            return p.result_offset
    return None


def recovery_of(question: str, spec: StoryWorldSpec) -> float:
    """The question's hidden recovery propensity (for ordering a dataset by it)."""
    return plan_for(question, spec).recover


class StoryWorldPolicy(WorldPolicy[StoryPlan]):
    """The story world's policy: a token is a whitespace-separated word."""

    name = "storyworld"

    def plan_for(self, question: str) -> StoryPlan:
        return plan_for(question, self.spec)

    def _state(self, plan: StoryPlan, prefix: str) -> tuple[int, int, bool, int]:
        """(operations done, current value, off track, steps since the last trap) after `prefix`."""
        done, value, since_trap = 0, plan.start, 99
        for p in _paragraphs(prefix):
            if p.kind in ("compute", "skip") and p.result is not None:
                if done < plan.n_steps and p.result == plan.values[done] and plan.traps[done]:
                    since_trap = 0
                else:
                    since_trap += 1
                done, value = done + 1, p.result
            elif p.kind in ("correction", "carry") and p.result is not None:
                value = p.result
        off = value != (plan.values[done - 1] if done else plan.start)
        return done, value, off, since_trap

    def _sample(self, plan: StoryPlan, prefix: str, rng: random.Random, max_tokens: int) -> Sample:
        s = self.spec
        if rng.random() < s.empty_rate:
            return Sample("", 0, False)
        done, value, off, since_trap = self._state(plan, prefix)
        paras: list[str] = []
        recover_at = None
        if off and rng.random() < plan.recover:
            recover_at = rng.randint(done, max(done, plan.n_steps - 1))
        was_off = off
        for j in range(done, plan.n_steps):
            op, a = plan.ops[j]
            if off and recover_at is not None and j >= recover_at:
                value, off, recover_at = plan.values[j - 1] if j else plan.start, False, None
                # no draw when every recovery is announced, so the default world's samples stay as they were
                if s.announce_recovery >= 1 or rng.random() < s.announce_recovery:
                    paras.append(f"Wait, I made a mistake earlier. The correct count so far is {value} {plan.unit}.")
                elif s.carry_rate > 0 and rng.random() < 0.5:  # silently: the right count, stated as if known
                    paras.append(f"So far, {plan.name} has {value} {plan.unit}.")
            if rng.random() < s.restate_rate:
                what = (f"buys {a} more {plan.unit}" if op == "+" else f"gives away {a} {plan.unit}" if op == "-"
                        else f"sees the number of {plan.unit} {'double' if a == 2 else 'triple'}")
                paras.append(f"On day {j + 1}, {plan.name} {what}.")
            if rng.random() < s.filler_rate:
                paras.append(rng.choice(_FILLER))
            err = plan.error_rate * (s.trap_factor if since_trap < 2 else 1.0)
            err *= s.front_load if j < FRONT_STEPS else 1.0
            shown_a, shown_op, skipped = a, op, False
            if not off and rng.random() < min(0.6, err):
                kind = _kind(rng.random(), s.error_kinds)
                if kind == "slip":  # arithmetic slip: the equation itself is wrong
                    r = _apply(op, value, a) + rng.choice([-1, 1]) * rng.randint(1, 9)
                elif kind == "misread":  # a misread number: a true equation on the wrong operand
                    shown_a = a + rng.choice([-1, 1]) * rng.randint(1, 5) if op != "×" else 5 - a
                    shown_a = max(1, shown_a)
                    r = _apply(op, value, shown_a)
                elif kind == "operation":  # the wrong operation
                    shown_op = "+" if op != "+" else "×"
                    shown_a = a if shown_op != "×" else 2
                    r = _apply(shown_op, value, shown_a)
                elif kind == "carry":  # the running count miscopied, then computed on: every equation holds
                    value = max(0, value + rng.choice([-1, 1]) * rng.randint(1, 9)) or value + 1
                    paras.append(f"So far, {plan.name} has {value} {plan.unit}.")
                    r = _apply(op, value, a)
                else:  # the day's event ignored: a misread condition, no equation at all
                    r, skipped = value, True
                if r != plan.values[j] and rng.random() < plan.recover:
                    recover_at = rng.randint(j + 1, plan.n_steps) if j + 1 < plan.n_steps else None
            else:
                r = _apply(op, value, a)
            right = r == plan.values[j]
            since_trap = 0 if right and plan.traps[j] and not off else since_trap + 1
            if skipped:
                paras.append(f"On day {j + 1}, {plan.name} still has {r} {plan.unit}.")
            else:
                verb = {"+": f"buying {shown_a} more", "-": f"giving away {shown_a}", "×": "the change"}[shown_op]
                paras.append(f"After {verb}, {plan.name} has {value} {shown_op} {shown_a} = {r} {plan.unit}.")
            value, off = r, not right
            if s.carry_rate > 0 and rng.random() < s.carry_rate:
                paras.append(f"So far, {plan.name} has {value} {plan.unit}.")
            if off and rng.random() < s.ramble_rate:
                paras.append(rng.choice(_RAMBLE))
        if rng.random() < s.unparseable_rate:
            paras.append("I am not sure what the final count is.")
        else:
            paras.append(f"So {plan.name} has \\boxed{{{value}}} {plan.unit} at the end.")
        text = "\n\n".join(paras)
        if prefix and not prefix.endswith("\n"):
            text = "\n\n" + text
        words = text.split(" ")
        truncated = len(words) > max_tokens
        cut_rate = s.truncate_rate_wrong if (off or was_off) else s.truncate_rate
        if truncated:
            words = words[:max_tokens]
        elif rng.random() < cut_rate:
            words, truncated = words[: int(rng.random() * len(words))], True
        out = " ".join(words)
        return Sample(out, len(out.split()), truncated)
