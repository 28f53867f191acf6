"""Step boundaries of a solution text: blank-line paragraphs (`delimiter`), token spans (`tokens`),
or sections of paragraphs (`sections`, for long reasoning traces).

A boundary is a character offset where one step ends and the next begins. In delimiter mode the
delimiter belongs to the step before it, so a prefix ends with the blank line and the model
continues with the next step. In tokens mode (the paper's) a step is about `chunk_tokens` tokens,
snapped forward to the next whitespace so no word is cut; the whitespace starts the next step.

In sections mode paragraphs (split as in delimiter mode) are merged until a section holds
`chunk_tokens` tokens, and a paragraph that opens a reflection ("Wait, ...", "Let me double-check",
REFLECTION) begins a new section once the current one holds a quarter of that: a reflection and
the step it reflects on are never one step, so a retraction can name the step it retracts. DeltaBench
(arXiv 2502.19361) divides long traces into sections the same way in spirit (about 16 per trace).

With `thinking_end` (a reasoning policy), the end of the thinking section is always a boundary in
every mode: the marker ends the last thinking step, the answer begins the next.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


# A paragraph that opens a reflection on what came before: a new section begins there.
REFLECTION = re.compile(
    r"\s*(?:\*\*)?(?:but\s+)?(?:wait|hmm+|hold\s+on|actually|alternatively|on\s+second\s+thought|oops|oh,?\s+(?:no|wait)"
    r"|no,?\s+wait|double[- ]check|let\s+me\s+(?:double[- ]check|check|verify|re-?(?:check|examine|verify|compute|calculate|read|think)"
    r"|think\s+again|go\s+back|reconsider))\b",
    re.IGNORECASE,
)


def opens_reflection(paragraph: str) -> bool:
    """The paragraph begins a reflection ("Wait, ...", "Let me double-check ...")."""
    return REFLECTION.match(paragraph[:200]) is not None


@dataclass(frozen=True)
class StepSplitter:
    mode: str  # "delimiter" | "tokens" | "sections"
    delimiter: str = r"\n\s*\n"
    chunk_tokens: int = 32
    count_tokens: Callable[[str], int] | None = None
    thinking_end: str | None = None  # a reasoning policy's end of thinking: always a boundary

    def boundaries(self, text: str, start: int = 0) -> list[int]:
        """Offsets in `text` (all > `start`, all < the end of its content) where a step ends.

        Only text[start:] is split; the caller's prefix before `start` is never cut again. The end
        of the text is not a boundary: the last step runs to the end.
        """
        tail = text[start:]
        if not tail.strip():
            return []
        if self.mode == "delimiter":
            cuts = [m.end() for m in re.finditer(self.delimiter, tail) if m.end() > 0]
        elif self.mode == "tokens":
            cuts = self._token_cuts(tail)
        elif self.mode == "sections":
            cuts = self._section_cuts(tail)
        else:
            raise ValueError(f"step_mode {self.mode!r}: expected 'delimiter', 'tokens' or 'sections'")
        if self.thinking_end is not None:
            ends = [m.end() for m in re.finditer(re.escape(self.thinking_end) + r"\s*", tail)]
            if ends:
                cuts = sorted(set(cuts).union(ends))
        # A cut is real only if the step it closes has content (a continuation that starts with a
        # blank line makes no whitespace-only step) and non-blank text follows it (no empty
        # trailing step). One pass over the cuts: linear in the text.
        last_content = len(tail.rstrip())
        real: list[int] = []
        prev = 0
        for c in cuts:
            if 0 < c < last_content and tail[prev:c].strip():
                real.append(start + c)
                prev = c
        return real

    def _section_cuts(self, tail: str) -> list[int]:
        """Paragraph ends where a section closes: once it holds chunk_tokens tokens, or before a
        paragraph that opens a reflection once it holds a quarter of that. One pass: linear."""
        count = self.count_tokens or (lambda s: len(s.split()))
        cuts: list[int] = []
        acc = 0
        begin = 0  # where the current paragraph begins
        ends = [m.end() for m in re.finditer(self.delimiter, tail) if m.end() > 0] + [len(tail)]
        for end in ends:
            paragraph = tail[begin:end]
            if acc > 0 and acc * 4 >= self.chunk_tokens and opens_reflection(paragraph):
                cuts.append(begin)
                acc = 0
            acc += max(1, count(paragraph)) if paragraph.strip() else 0
            if acc >= self.chunk_tokens and end < len(tail):
                cuts.append(end)
                acc = 0
            begin = end
        return cuts

    def _token_cuts(self, tail: str) -> list[int]:
        count = self.count_tokens or (lambda s: len(s.split()))
        cuts: list[int] = []
        acc = 0
        # Count word by word (a word with its leading whitespace) rather than re-tokenising
        # growing prefixes: linear, and close enough for "about N tokens".
        for m in re.finditer(r"\s*\S+", tail):
            acc += max(1, count(m.group(0)))
            if acc >= self.chunk_tokens:
                cuts.append(m.end())  # the following whitespace starts the next step
                acc = 0
        return cuts


def chunk_tokens_for(mean_solution_tokens: float, steps_per_solution: int) -> int:
    """The paper's token step: mean solution length / steps per solution, at least one token."""
    return max(1, round(mean_solution_tokens / max(1, steps_per_solution)))
