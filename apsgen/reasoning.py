"""A reasoning policy's solution: a thinking section, closed by a marker (`</think>`), then the
final answer. Pure text functions, each one pass over the text (model output is untrusted and may be
megabytes): where the answer part begins, and which part a step lies in.

The thinking section may or may not open with its own marker (Qwen3 writes `<think>`; DeepSeek-R1
distills' chat templates put it in the prompt), so only the closing marker is looked for, and its
LAST occurrence ends the thinking (a trace may quote the marker while thinking).
"""

from __future__ import annotations


def answer_start(text: str, thinking_end: str) -> int | None:
    """Offset in `text` where the final answer begins (just after the last `thinking_end`), or None
    while the text is still thinking."""
    at = text.rfind(thinking_end)
    return None if at < 0 else at + len(thinking_end)


def answer_part(text: str, thinking_end: str | None) -> str:
    """What the verifier reads: the text after the thinking section ("" while still thinking), or the
    whole text for a policy without one (`thinking_end` None)."""
    if thinking_end is None:
        return text
    start = answer_start(text, thinking_end)
    return "" if start is None else text[start:]


def part_of(full_text: str, step_start: int, thinking_end: str | None) -> str | None:
    """"thinking" or "answer" for the step of `full_text` that begins at `step_start` (None for a
    policy without a thinking section). A step that begins after a marker is the answer's."""
    if thinking_end is None:
        return None
    return "answer" if full_text.rfind(thinking_end, 0, step_start) >= 0 else "thinking"
