"""The reading loop: show a path, take one key, record it, go on; `q` (or the end of the input) stops
with everything answered so far kept.

On a terminal a key is read without Enter; over a pipe each answer is a line (`r`, `e 2`, `f`, `s`,
`q`), so a script or a test drives the same loop. After `e` the step number may follow on the same
line or is asked for.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from apsgen.audit.record import AuditLog, check_answer, clip, make_reading
from apsgen.audit.sample import FIRST_ERROR, AuditError, AuditItem, Sample, Step

MAX_TRIES = 20  # unreadable answers in a row before the session stops (a pipe of garbage ends)


def _evidence(step: Step, kind: str) -> str:
    if step.source == "correct_solution":
        return "reached the gold answer"
    if step.source == "wrong_solution":
        return "a wrong final answer"
    if kind != FIRST_ERROR and step.mc_value is None:
        return "on a solution that reached the gold answer, not estimated"
    if step.basis in ("arithmetic", "retraction", "restatement"):
        return f"{step.verdict} by {step.basis}"
    if step.mc_value is None:
        return step.verdict or "no label"
    ref = "" if step.reference_value is None else f", reference {step.reference_value:.2f}"
    flawed = f", {step.n_correct_flawed} of them after a shown error" if step.n_correct_flawed else ""
    return f"MC {step.mc_value:.2f} ({step.n_correct}/{step.n_rollouts} rollouts right{flawed}{ref}), {step.verdict}"


def render_item(item: AuditItem, position: int, total: int) -> str:
    kind = "located first error" if item.kind == FIRST_ERROR else "all-correct solution"
    lines = [
        "",
        "=" * 78,
        f"[{position}/{total}] {kind} · problem {item.problem_id} ({item.dataset}) · path {item.path_id}",
        f"Question: {clip(item.question)}",
        f"Gold answer: {clip(item.gold_answer, 200)}",
        "",
    ]
    for i, step in enumerate(item.steps):
        mark = "  <== labelled first error" if item.kind == FIRST_ERROR and i == len(item.steps) - 1 else ""
        lines.append(f"  {i + 1:>2} [{step.label}] {clip(step.text)}")
        lines.append(f"       ({_evidence(step, item.kind)}){mark}")
    for text in item.after:
        lines.append(f"   · (after the label, not labelled) {clip(text, 400)}")
    if item.judge_first_error is not None:
        said = "no wrong step" if item.judge_first_error < 0 else f"step {item.judge_first_error + 1}"
        lines.append(f"  judge: {said} ({item.judge_outcome})")
    return "\n".join(lines)


def prompt_for(item: AuditItem) -> str:
    n = len(item.steps)
    if item.kind == FIRST_ERROR:
        earlier = "[e] an earlier step is wrong  " if n > 1 else ""
        return f"Is step {n} the first wrong step?  [r] right  {earlier}[f] step {n} is fine  [s] skip  [q] quit: "
    return "Is every step right?  [r] right  [e] a step is wrong  [s] skip  [q] quit: "


@dataclass
class SessionResult:
    answered: int
    remaining: int
    quit: bool


class Keys:
    """Answers from a terminal (one key, no Enter) or from a pipe (one line each)."""

    def __init__(self, stream: TextIO, out: TextIO):
        self.stream = stream
        self.out = out
        self.tty = stream.isatty() and hasattr(stream, "fileno")

    def key(self, prompt: str) -> str | None:
        self.out.write(prompt)
        self.out.flush()
        if self.tty:
            return self._raw_key()
        line = self.stream.readline()
        if not line:
            return None  # end of input: quit
        self.out.write(line if line.endswith("\n") else line + "\n")  # echo what the pipe answered
        return line.strip()

    def line(self, prompt: str) -> str | None:
        self.out.write(prompt)
        self.out.flush()
        line = self.stream.readline()
        if not line:
            return None
        if not self.tty:
            self.out.write(line if line.endswith("\n") else line + "\n")
        return line.strip()

    def _raw_key(self) -> str:
        import termios
        import tty

        fd = self.stream.fileno()
        old = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            ch = os.read(fd, 1).decode(errors="replace")
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
        self.out.write(ch + "\n")
        return ch


def _ask(item: AuditItem, keys: Keys) -> tuple[str, int | None] | None:
    """(answer, 0-based wrong step) or None to quit."""
    for _ in range(MAX_TRIES):
        got = keys.key(prompt_for(item))
        if got is None:
            return None
        key, _, rest = got.partition(" ")
        key = key[:1].lower()
        if key == "q":
            return None
        answer = {"r": "right", "f": "fine", "s": "skip", "e": "earlier"}.get(key)
        if answer is None:
            keys.out.write(f"  '{clip(got, 20)}' is not an answer\n")
            continue
        wrong: int | None = None
        if answer == "earlier":
            top = len(item.steps) - 1 if item.kind == FIRST_ERROR else len(item.steps)
            if top < 1:
                keys.out.write("  the labelled step is the first one: no step before it can be wrong\n")
                continue
            text = rest.strip() or keys.line(f"  which step is the first wrong one? [1-{top}]: ")
            if text is None:
                return None
            try:
                wrong = int(text) - 1
            except ValueError:
                keys.out.write(f"  '{clip(text, 20)}' is not a step number\n")
                continue
        try:
            check_answer(item.candidate, answer, wrong)
        except AuditError as e:
            keys.out.write(f"  {e}\n")
            continue
        return answer, wrong
    keys.out.write(f"  {MAX_TRIES} answers in a row were not understood: stopping\n")
    return None


def run_session(sample: Sample, log: AuditLog, auditor: str, *, stream: TextIO = sys.stdin,
                out: TextIO = sys.stdout, on_answer: Callable[[], None] | None = None) -> SessionResult:
    """Show every sampled path this auditor has not answered on this state of the output."""
    done = {v.path_id for v in log.read(auditor) if v.output_digest == sample.digest}
    todo = [item for item in sample.items if item.path_id not in done]
    keys = Keys(stream, out)
    answered = 0
    position = len(sample.items) - len(todo)
    for item in todo:
        position += 1
        out.write(render_item(item, position, len(sample.items)) + "\n")
        got = _ask(item, keys)
        if got is None:
            return SessionResult(answered, len(todo) - answered, True)
        log.append([make_reading(item, got[0], got[1], auditor=auditor, sample=sample)])
        answered += 1
        if on_answer:
            on_answer()
    return SessionResult(answered, 0, False)
