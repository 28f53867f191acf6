"""Step boundaries of a solution text: blank-line paragraphs (`delimiter`) or token spans (`tokens`).

A boundary is a character offset where one step ends and the next begins. In delimiter mode the
delimiter belongs to the step before it, so a prefix ends with the blank line and the model
continues with the next step. In tokens mode (the paper's) a step is about `chunk_tokens` tokens,
snapped forward to the next whitespace so no word is cut; the whitespace starts the next step.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class StepSplitter:
    mode: str  # "delimiter" | "tokens"
    delimiter: str = r"\n\s*\n"
    chunk_tokens: int = 32
    count_tokens: Callable[[str], int] | None = None

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
        else:
            raise ValueError(f"step_mode {self.mode!r}: expected 'delimiter' or 'tokens'")
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
