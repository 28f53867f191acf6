"""The judge's prompt and the parsing of its reply.

The judge sees the problem and the numbered steps (1..n) of one labelled path and names the first
wrong step or none. Its reply is model output, so it is parsed without trust and in linear time:

- the last complete `\\boxed{...}` decides: a step number 1..n, or -1, `none`, `no error`,
  `all correct` (and the like) for none;
- without a box, only an explicit sentence counts: "the first wrong (incorrect, erroneous) step
  is [step] N" or "... is none";
- anything else (no verdict, a number out of range, two verdicts in one box) is unparseable and
  counted as such: a verdict is never guessed from a stray number.
"""

from __future__ import annotations

import re

from apsgen.verify.extract import last_boxed

# A judge may think at length; only the tail can hold its verdict (and this bounds the work).
MAX_REPLY_CHARS = 20_000
_NONE_WORDS = re.compile(
    r"^(?:none|no|no error|no errors|no wrong step|no incorrect step|all (?:steps )?(?:are )?correct|correct|-1|null)$"
)
_NUMBER = re.compile(r"^(?:step\s*)?(-?\d{1,4})$")
_SENTENCE = re.compile(
    r"first (?:wrong|incorrect|erroneous) step\s*(?:is|:)?\s*(?:step\s*)?(\d{1,4}|none)\b", re.IGNORECASE
)


def numbered_steps(steps: list[str]) -> str:
    return "\n\n".join(f"Step {i}: {s.strip()}" for i, s in enumerate(steps, 1))


def render_request(template: str, problem: str, steps: list[str]) -> str:
    """The judge's user message: the template with {problem} and {steps} replaced (once each, so a
    brace in the problem text is never read as a field)."""
    head, sep, tail = template.partition("{problem}")
    head = head.replace("{steps}", numbered_steps(steps))
    tail = tail.replace("{steps}", numbered_steps(steps))
    return head + (problem if sep else "") + tail


def _verdict(token: str, n_steps: int) -> int | None:
    """-1 for none, 0-based index for a step, None when the token is no verdict."""
    word = " ".join(token.lower().replace("\\text", " ").replace("{", " ").replace("}", " ").split())
    word = word.strip(" .")
    if _NONE_WORDS.match(word):
        return -1
    m = _NUMBER.match(word)
    if m is None:
        return None
    n = int(m.group(1))
    if n == -1:
        return -1
    return n - 1 if 1 <= n <= n_steps else None


def parse_first_error(reply: str, n_steps: int) -> int | None:
    """The judge's first wrong step as a 0-based index (-1: none), or None when the reply holds no
    verdict it can be held to."""
    tail = reply[-MAX_REPLY_CHARS:]
    boxed = last_boxed(tail)
    if boxed is not None:
        return _verdict(boxed, n_steps)
    sentences = _SENTENCE.findall(tail)
    if not sentences:
        return None
    return _verdict(sentences[-1], n_steps)
