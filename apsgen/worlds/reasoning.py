"""A simulated reasoning policy: long thinking sections with reflections, then a short answer.

The story world's questions (a shop's stock changing day by day), solved the way reasoning models
(Qwen3 thinking, DeepSeek-R1 distills) write:

- **A thinking section, then the answer.** The solution opens with `<think>`, thinks through every
  day in several paragraphs (planning, musing, the day's computation), closes with `</think>` and
  states the answer in one line. The answer counts only after `</think>`: a trace cut off while
  thinking has none.
- **Long traces, cut by the budget.** Each day takes several paragraphs, so a trace is hundreds of
  words (a token is a word here); off track the policy muses longer, and a completion that runs
  past `max_tokens` is truncated with no answer.
- **Reflections of every kind** ("Wait, ..."): after a day's computation the policy may reflect.
  Off track, a reflection fixes the error (announced: "Wait, that's not right. 23 + 14 is 37, not
  35.", or for an error of an earlier day "... I made a mistake earlier: going through the days
  again, the count is 98, not 107.") with probability `fix_rate`, or double-checks and changes nothing ("Yes, that's right.",
  the error stays). On track, a reflection usually confirms, but sometimes retracts the right step
  and replaces it by a wrong one ("Wait, that's wrong. I misread: ...") — that reflection is then
  the first error. DeltaBench (arXiv 2502.19361) finds two thirds of reflections ineffective.
- **Silent recoveries** as in the story world: off track, the policy may later just carry on from the
  right count (at the question's own recovery rate, drawn around the cell's mean).
- **Errors of the story world's kinds** (an arithmetic slip, a misread number, the wrong operation).

Everything is derived from (question, prefix, seed). `first_error_offset` gives the planted truth:
the first stated count (a day's result, or the count a reflection replaces it by) that differs from
its reference value; fixes, confirmations, musings and restatements are never errors.
`on_track` says whether a prefix's current count is right (a reflection that fixed the error puts
the trace back on track).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from apsgen.policy.base import Sample
from apsgen.problem import Problem
from apsgen.worlds import story
from apsgen.worlds.base import WorldPolicy, within_budget

THINK_START, THINK_END = "<think>", "</think>"

_DAY = re.compile(r"^So after day (\d+): (-?\d+) ([+\-×]) (\d+) = (-?\d+) ")
_FIX = re.compile(r"^Wait, that's not right\. .* So \w+ has (-?\d+) ")
_RETRACT = re.compile(r"^Wait, that's wrong\. I misread: .* = (-?\d+) ")
_CARRY = re.compile(r"^So far, \w+ has (-?\d+) ")
_FINAL = re.compile(r"^So the final count is (-?\d+) ")
_MUSE = (
    "Hmm, let me think about what this day changes.",
    "Okay, I need to keep the running total in mind here.",
    "Let me make sure I read this day correctly before computing.",
    "So this is one more change to the count, and I should apply it to the current total.",
    "Alright, the question gives one event per day, so I go through them in order.",
    "I think the cleanest way is to update the total after each day.",
)
_RAMBLE = (
    "Hmm, this number feels a bit off, but I will keep going with it for now.",
    "I am not fully sure about this total. Let me continue and see where it ends up.",
    "That seems large. Maybe it is fine. Let me keep going anyway and check later.",
)


@dataclass(frozen=True)
class ReasoningWorldSpec:
    """One cell of the reasoning world."""

    recover_mean: float = 0.1  # silent recovery (the story world's), drawn per question around this
    success_rate: tuple[float, float] = (0.05, 0.5)
    recover_concentration: float = 2.5
    min_steps: int = 5
    max_steps: int = 12
    muse_per_day: tuple[int, int] = (1, 4)  # musing paragraphs per day: what makes a trace long
    restate_rate: float = 0.4
    reflect_rate: float = 0.35  # chance of a reflection after a day's computation
    fix_rate: float = 0.4  # off track: chance a reflection fixes the error (else it changes nothing)
    retract_right_rate: float = 0.08  # on track: chance a reflection retracts the right step wrongly
    ramble_rate: float = 0.5  # off track: chance of a hesitant paragraph per day
    error_kinds: tuple[float, float, float, float, float] = (0.4, 0.35, 0.25, 0.0, 0.0)
    front_load: float = 1.0
    trap_rate: float = 0.0
    trap_factor: float = 1.0
    unparseable_rate: float = 0.02
    empty_rate: float = 0.01

    def story_spec(self) -> story.StoryWorldSpec:
        return story.StoryWorldSpec(recover_mean=self.recover_mean, success_rate=self.success_rate,
                                    recover_concentration=self.recover_concentration, min_steps=self.min_steps,
                                    max_steps=self.max_steps, trap_rate=self.trap_rate, trap_factor=self.trap_factor,
                                    error_kinds=self.error_kinds, front_load=self.front_load)


def reasoning_problems(n: int, spec: ReasoningWorldSpec, seed: int) -> list[Problem]:
    return [Problem(p.id, p.question, p.answer, dataset="reasoningworld", row=p.row)
            for p in story.story_problems(n, spec.story_spec(), seed)]


def plan_for(question: str, spec: ReasoningWorldSpec) -> story.StoryPlan:
    return story.plan_for(question, spec.story_spec())


@dataclass
class _State:
    done: int  # days computed
    value: int  # the count the trace holds now
    closed: bool  # the thinking section has ended
    first_error: int | None  # offset of the first wrong stated count


def _read(plan: story.StoryPlan, text: str) -> _State:
    """Walk the paragraphs of `text` (one pass): days done, the current count, the first error."""
    done, value, first = 0, plan.start, None
    closed = False
    for para in re.finditer(r"[^\n]+", text):
        line = para.group(0)
        if line.startswith(THINK_END) or THINK_END in line:
            closed = True
            continue
        if closed:
            continue
        m = _DAY.match(line)
        if m is not None:
            result = int(m.group(5))
            ref = plan.values[done] if done < plan.n_steps else None
            if first is None and result != ref:
                first = para.start() + m.start(5)
            done, value = done + 1, result
            continue
        m = _RETRACT.match(line)
        if m is not None:  # a reflection that replaces the last day's result
            result = int(m.group(1))
            ref = plan.values[done - 1] if done else plan.start
            if first is None and result != ref:
                first = para.start() + m.start(1)
            value = result
            continue
        for pattern in (_FIX, _CARRY, _FINAL):
            m = pattern.match(line)
            if m is not None:
                stated = int(m.group(1))
                ref = plan.values[done - 1] if done else plan.start
                if pattern is not _FIX and first is None and stated != ref:
                    first = para.start() + m.start(1)
                value = stated
                break
    return _State(done, value, closed, first)


def first_error_offset(question: str, text: str, spec: ReasoningWorldSpec | None = None) -> int | None:
    """Offset of the first stated count that differs from its reference value (the planted truth)."""
    return _read(plan_for(question, spec or ReasoningWorldSpec()), text).first_error


def on_track(question: str, text: str, spec: ReasoningWorldSpec | None = None) -> bool:
    """The count the trace holds after `text` is right: a fix put it back on track."""
    plan = plan_for(question, spec or ReasoningWorldSpec())
    state = _read(plan, text)
    return state.value == (plan.values[state.done - 1] if state.done else plan.start)


def recovery_of(question: str, spec: ReasoningWorldSpec) -> float:
    return plan_for(question, spec).recover


class ReasoningWorldPolicy(WorldPolicy[story.StoryPlan]):
    """The reasoning world's policy: a token is a whitespace-separated word."""

    name = "reasoningworld"

    def plan_for(self, question: str) -> story.StoryPlan:
        return plan_for(question, self.spec)

    def _sample(self, plan: story.StoryPlan, prefix: str, rng: random.Random, max_tokens: int) -> Sample:
        s: ReasoningWorldSpec = self.spec
        if rng.random() < s.empty_rate:
            return Sample("", 0, False)
        state = _read(plan, prefix)
        value = state.value
        right = plan.values[state.done - 1] if state.done else plan.start
        off = value != right
        paras: list[str] = []
        if not state.closed:
            if not prefix:
                paras.append(f"{THINK_START}\nOkay, let me work out how many {plan.unit} {plan.name} has at the end.")
            recover_at = None
            if off and rng.random() < plan.recover:
                recover_at = rng.randint(state.done, max(state.done, plan.n_steps - 1))
            for j in range(state.done, plan.n_steps):
                op, a = plan.ops[j]
                if off and recover_at is not None and j >= recover_at:  # silently back on the right count
                    value, off, recover_at = plan.values[j - 1] if j else plan.start, False, None
                    paras.append(f"So far, {plan.name} has {value} {plan.unit} .")
                if rng.random() < s.restate_rate:
                    what = (f"buys {a} more {plan.unit}" if op == "+" else f"gives away {a} {plan.unit}" if op == "-"
                            else f"sees the number of {plan.unit} {'double' if a == 2 else 'triple'}")
                    paras.append(f"On day {j + 1}, {plan.name} {what}.")
                for _ in range(rng.randint(*s.muse_per_day)):
                    paras.append(rng.choice(_MUSE))
                if off and rng.random() < s.ramble_rate:
                    paras.append(rng.choice(_RAMBLE))
                shown_op, shown_a = op, a
                if not off and rng.random() < min(0.6, plan.error_rate):
                    kind = story._kind(rng.random(), s.error_kinds)
                    if kind == "slip":
                        r = story._apply(op, value, a) + rng.choice([-1, 1]) * rng.randint(1, 9)
                    elif kind == "misread":
                        shown_a = max(1, a + rng.choice([-1, 1]) * rng.randint(1, 5) if op != "×" else 5 - a)
                        r = story._apply(op, value, shown_a)
                    else:
                        shown_op = "+" if op != "+" else "×"
                        shown_a = a if shown_op != "×" else 2
                        r = story._apply(shown_op, value, shown_a)
                    if r != plan.values[j] and rng.random() < plan.recover:
                        recover_at = rng.randint(j + 1, plan.n_steps) if j + 1 < plan.n_steps else None
                else:
                    r = story._apply(op, value, a)
                before = value
                paras.append(f"So after day {j + 1}: {before} {shown_op} {shown_a} = {r} {plan.unit} .")
                value = r
                off = r != plan.values[j]
                if rng.random() < s.reflect_rate:
                    if off and rng.random() < s.fix_rate:  # an effective reflection, announced
                        value, off, recover_at = plan.values[j], False, None
                        if before == (plan.values[j - 1] if j else plan.start):  # today's step was the slip
                            paras.append(f"Wait, that's not right. {before} {op} {a} is {value}, not {r}. "
                                         f"So {plan.name} has {value} {plan.unit} .")
                        else:  # the error came on an earlier day: the count is redone from the start
                            paras.append(f"Wait, that's not right. I made a mistake earlier: going through the days "
                                         f"again, the count is {value}, not {r}. So {plan.name} has {value} {plan.unit} .")
                    elif not off and rng.random() < s.retract_right_rate:  # retracts a right step
                        wrong_a = a + rng.randint(1, 4) if op != "×" else 5 - a
                        value = story._apply(op, before, wrong_a)
                        off = value != plan.values[j]
                        paras.append(f"Wait, that's wrong. I misread: it was {wrong_a}, not {a}. "
                                     f"So {before} {op} {wrong_a} = {value} {plan.unit} .")
                    else:  # a double-check that changes nothing
                        paras.append(f"Wait, let me double-check that. {before} {shown_op} {shown_a} = {r}. "
                                     "Yes, that's right.")
            paras.append(f"So the final count is {value} {plan.unit} .\n{THINK_END}")
        if rng.random() < s.unparseable_rate:
            paras.append("I am not sure what the final count is.")
        else:
            paras.append(f"{plan.name} has \\boxed{{{value}}} {plan.unit} at the end.")
        text = "\n\n".join(paras)
        if prefix and not prefix.endswith("\n"):
            text = "\n\n" + text
        return within_budget(text, max_tokens)
