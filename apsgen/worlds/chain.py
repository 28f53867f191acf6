"""A simulated policy with planted errors, for tests, benchmarks and trying the pipeline without a model.

A problem is a chain of M arithmetic operations written in the question. A solution is M paragraphs
"Step i: <filler words> v op a = r." and the last one ends with "\\boxed{r}", so the real verifier
grades it. Continuing a prefix, the policy errs at each new step with the problem's per-step error
rate (the result is off), or with `hard_step_error` at the problem's hard steps. After an error
the answer stays wrong unless the sample "recovers" (probability `recover_rate`): it jumps back to
the right value at a step drawn from the ones left, so a wrong prefix can still end right, any
number of steps later. A completion may also be empty, start with a blank line, be cut off
(truncated) or end without an answer, as real policies' do. Everything the policy needs is parsed
from (question, prefix), so any process can serve any problem. Everything is seeded.

`first_error_step` / `first_error_offset` give the planted truth for any solution text.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

from apsgen.config import SimulatedSpec
from apsgen.policy.base import Sample
from apsgen.problem import Problem
from apsgen.worlds.base import WorldPolicy

_OPS = {"add": "+", "subtract": "-", "multiply by": "×"}
_QUESTION_OP = re.compile(r"(add|subtract|multiply by) (\d+)")
_START = re.compile(r"Start with (\d+)")
_STEP_RESULT = re.compile(r"Step (\d+):.*?=\s*(-?\d+)", re.S)
# Filler phrases: words with no digits, no '=', never 'Step', so the parser cannot mistake them.
_FILLER = (
    "Now we carry the running total forward.",
    "Next we apply the operation the problem asks for.",
    "Reading the question again, the next instruction is clear.",
    "We keep track of the value carefully.",
    "This step uses the current total.",
    "Following the chain of operations in order,",
    "Let us be careful with the arithmetic here.",
    "Taking the previous result as our input,",
)
_FILLER_WORDS = tuple(f.split() for f in _FILLER)


@dataclass(frozen=True)
class Plan:
    """A problem's hidden structure, rebuilt from the question text."""

    start: int
    ops: tuple[tuple[str, int], ...]  # (op name, operand) per step
    values: tuple[int, ...]  # the reference result after each step
    error_rate: float
    hard: tuple[bool, ...] = ()  # per step: a hard step errs with hard_step_error instead

    def step_error(self, step: int, spec: SimulatedSpec) -> float:
        """Error probability of 1-based `step` from a correct prefix."""
        return spec.hard_step_error if self.hard and self.hard[step - 1] else self.error_rate

    @property
    def n_steps(self) -> int:
        return len(self.ops)


def _apply(op: str, v: int, a: int) -> int:
    return v + a if op == "add" else v - a if op == "subtract" else v * a


def _unit(*parts: object) -> float:
    """A uniform number in [0, 1) from a stable hash of the parts."""
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def plan_for(question: str, spec: SimulatedSpec) -> Plan:
    m = _START.search(question)
    ops = tuple((name, int(a)) for name, a in _QUESTION_OP.findall(question))
    if m is None or not ops:
        raise ValueError(f"not a simulated question (no 'Start with N' and operations): {question[:80]!r}")
    v = int(m.group(1))
    values = []
    for op, a in ops:
        v = _apply(op, v, a)
        values.append(v)
    u = _unit("difficulty", question)
    if spec.success_rate is not None:
        lo, hi = spec.success_rate
        success = lo + u * (hi - lo)
        rate = 1.0 - success ** (1.0 / len(ops))
    else:
        lo, hi = spec.error_rate
        rate = lo + u * (hi - lo)
    hard = tuple(_unit("hard", question, i) < spec.hard_step_rate for i in range(len(ops)))
    return Plan(int(m.group(1)), ops, tuple(values), rate, hard)


def simulated_problems(n: int, spec: SimulatedSpec, seed: int) -> list[Problem]:
    """`n` problems of min_steps..max_steps operations each; the gold answer is the final value."""
    from apsgen.problem import problem_id

    rng = random.Random(f"simulated-problems-{seed}")
    problems = []
    for i in range(n):
        n_steps = rng.randint(spec.min_steps, spec.max_steps)
        v = rng.randint(2, 30)
        start, parts = v, []
        for _ in range(n_steps):
            choices = ["add", "add", "subtract", "multiply by"]
            op = rng.choice(choices)
            if op == "multiply by" and abs(v) > 500:
                op = "subtract"
            a = rng.randint(2, 3) if op == "multiply by" else rng.randint(1, 50)
            if op == "subtract" and v - a < 0:
                op = "add"
            v = _apply(op, v, a)
            parts.append(f"{op} {a}")
        question = (
            f"Puzzle {seed}-{i}. Start with {start}. Then, in order: " + "; ".join(parts) + ". What is the final value?"
        )
        problems.append(Problem(problem_id(question, str(v)), question, str(v), dataset="simulated", row=i))
    return problems


@dataclass
class _Line:
    index: int  # 1-based step number
    start: int  # offset of the line in the text
    result: int | None
    result_offset: int | None


def _parse_lines(text: str) -> list[_Line]:
    lines = []
    for para in re.finditer(r"[^\n]+", text):
        m = _STEP_RESULT.search(para.group(0))
        if m is None:
            step = re.match(r"Step (\d+):", para.group(0))
            lines.append(_Line(int(step.group(1)) if step else len(lines) + 1, para.start(), None, None))
        else:
            lines.append(_Line(int(m.group(1)), para.start(), int(m.group(2)), para.start() + m.start(2)))
    return lines


def first_error_offset(question: str, text: str, spec: SimulatedSpec | None = None) -> int | None:
    """Offset of the first step result that differs from the reference, None if there is none."""
    plan = plan_for(question, spec or SimulatedSpec())
    for line in _parse_lines(text):
        if line.result is None or not 1 <= line.index <= plan.n_steps:
            continue
        if line.result != plan.values[line.index - 1]:
            return line.result_offset
    return None


def score_first_errors(problems: list[Problem], results: list, spec: SimulatedSpec | None = None) -> tuple[int, int]:
    """(located, right) over every step a search marked as a first error: right when the step
    holds the first wrong result of its path according to the planted truth."""
    located = right = 0
    for problem, result in zip(problems, results, strict=True):
        for step in result.steps:
            if step.is_first_error:
                located += 1
                off = first_error_offset(problem.question, step.prefix + step.step_text, spec)
                right += off is not None and step.char_start <= off < step.char_end
    return located, right


def first_error_step(question: str, text: str, spec: SimulatedSpec | None = None) -> int | None:
    """The planted truth: the 1-based step whose result first goes wrong in `text`, or None."""
    off = first_error_offset(question, text, spec)
    if off is None:
        return None
    for line in reversed(_parse_lines(text)):
        if line.start <= off:
            return line.index
    return None


class SimulatedPolicy(WorldPolicy[Plan]):
    """The chain world's policy: a token is a whitespace-separated word."""

    name = "simulated"

    def plan_for(self, question: str) -> Plan:
        return plan_for(question, self.spec)

    def _sample(self, plan: Plan, prefix: str, rng: random.Random, max_tokens: int) -> Sample:
        spec = self.spec
        words = self._continue(plan, prefix, rng)
        empty, blank, cut = rng.random() < spec.empty_rate, rng.random(), rng.random()
        if empty:
            return Sample(text="", n_tokens=0, truncated=False)
        if words and blank < spec.blank_start_rate and (not prefix or prefix.endswith("\n")) and words[0] != "\n\n":
            words = ["\n\n", *words]
        truncated = len(words) > max_tokens
        if truncated:
            words = words[:max_tokens]
        elif words and cut < spec.truncate_rate:
            words, truncated = words[: int(rng.random() * len(words))], True
        text = _join(prefix, words)
        return Sample(text=text, n_tokens=len([w for w in words if w != "\n\n"]), truncated=truncated)

    def _continue(self, plan: Plan, prefix: str, rng: random.Random) -> list[str]:
        """The continuation as words, with "\\n\\n" marking a paragraph break."""
        paras = prefix.split("\n\n")
        # Blank paragraphs (a completion that started with a blank line) are no steps.
        complete, partial = [p for p in paras[:-1] if p.strip()], paras[-1].split()
        line_open = bool(partial)  # the prefix ends inside (or right at the end of) a step line
        value, off_track = plan.start, False
        for para in complete:
            m = _STEP_RESULT.search(para)
            if m is None:
                continue
            i, r = int(m.group(1)), int(m.group(2))
            value = r
            off_track = not (1 <= i <= plan.n_steps and r == plan.values[i - 1])
        step = len(complete) + 1
        if step > plan.n_steps and not partial:
            return []
        # Decided once per sample: a solution already off track may find its way back, at a step
        # drawn from the ones left.
        recover_at = rng.randint(step, plan.n_steps) if off_track and rng.random() < self.spec.recover_rate else None
        unparseable = rng.random() < self.spec.unparseable_rate
        if "So" in partial or "cannot" in partial:  # the prefix already chose how the solution ends
            unparseable = "cannot" in partial
        out: list[str] = []
        while step <= plan.n_steps:
            op, a = plan.ops[step - 1]
            fixed = _written_result(partial)
            if fixed is not None:
                r = fixed
            elif off_track and recover_at is not None and step >= recover_at:
                r, recover_at = plan.values[step - 1], None
            elif not off_track and rng.random() < plan.step_error(step, self.spec):
                r = _apply(op, value, a) + rng.choice([-1, 1]) * rng.randint(1, 9)
                if step < plan.n_steps and rng.random() < self.spec.recover_rate:
                    recover_at = rng.randint(step + 1, plan.n_steps)
            else:
                r = _apply(op, value, a)
            off_track = r != plan.values[step - 1]
            tail = [str(value), _OPS[op], str(a), "=", f"{r}."]
            if step == plan.n_steps:
                tail += (
                    ["I", "cannot", "settle", "on", "an", "answer."]
                    if unparseable
                    else ["So", "the", "final", "answer", "is", f"\\boxed{{{r}}}."]
                )
            if partial:
                if partial == ["Step"]:
                    out.append(f"{step}:")
                out += _rest_of_line(partial, tail)
            else:
                if out or line_open:
                    out.append("\n\n")
                out += ["Step", f"{step}:", *self._filler(rng), *tail]
            partial = []
            value = r
            step += 1
        return out

    def _filler(self, rng: random.Random) -> list[str]:
        target = max(0, self.spec.tokens_per_step - 7)
        words: list[str] = []
        while len(words) < target:
            words += rng.choice(_FILLER_WORDS)
        return words[: max(target, 0)]


def _written_result(partial: list[str]) -> int | None:
    """The result already written in a partial line ("... = 80."), if it got that far."""
    if "=" in partial:
        i = partial.index("=")
        if i + 1 < len(partial):
            m = re.match(r"-?\d+", partial[i + 1])
            if m:
                return int(m.group(0))
    return None


def _rest_of_line(partial: list[str], tail: list[str]) -> list[str]:
    """What completes a partial line: the longest start of `tail` it already ends with is skipped."""
    for j in range(min(len(tail), len(partial)), 0, -1):
        if partial[-j:] == tail[:j]:
            return tail[j:]
    # The result is written but what follows it does not match: finish after the result.
    return tail[5:] if _written_result(partial) is not None else tail


def _join(prefix: str, words: list[str]) -> str:
    """Words joined by single spaces, "\n\n" markers as paragraph breaks without spaces around
    them, and a space first when the prefix does not end in whitespace. (Words hold no whitespace.)"""
    if not words:
        return ""
    text = " ".join(words).replace(" \n\n", "\n\n").replace("\n\n ", "\n\n")
    if prefix and not prefix[-1].isspace() and words[0] != "\n\n":
        text = " " + text
    return text
