"""Find the final answer in a model's solution text: `\\boxed{}`, "The answer is", `####`, last number.

Model output is untrusted and may be truncated mid-expression, so every scan here is linear in
the text length and tolerates unbalanced braces.
"""

from __future__ import annotations

import re

_BOX_COMMANDS = ("\\boxed", "\\fbox")

# Phrases a policy uses to announce its answer, most specific first. The captured text runs to
# the end of the line; trailing punctuation and pleasantries are trimmed afterwards.
_ANSWER_PHRASES = (
    re.compile(r"final answer\s*(?:is|:)\s*(.+)", re.IGNORECASE),
    re.compile(r"the answer is\s*:?\s*(.+)", re.IGNORECASE),
    re.compile(r"answer\s*:\s*(.+)", re.IGNORECASE),
)
_GSM8K_MARK = re.compile(r"####\s*(.+)")
_LAST_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_PLEASANTRY = "i hope it is correct"


def _braced_argument(text: str, start: int) -> tuple[str, int] | None:
    """The `{...}` group opening at `text[start]`, with nested braces; None when unclosed."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2  # `\{` and `\}` are literal braces, not grouping
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
        i += 1
    return None


def _box_content(text: str, pos: int, command: str) -> str | None:
    """The argument of the box command found at `pos`: `\\boxed{...}` or `\\boxed 5`."""
    i = pos + len(command)
    n = len(text)
    if i < n and text[i].isalpha():
        return None  # a longer command such as \boxedsomething
    while i < n and text[i] in " \t":
        i += 1
    if i < n and text[i] == "{":
        found = _braced_argument(text, i)
        return None if found is None else found[0]
    if pos + len(command) < n and text[pos + len(command)] == " ":
        # `\boxed 5`: TeX takes one token; policies write one word.
        match = re.match(r"[^\s$]+", text[i:])
        return match.group(0) if match else None
    return None


def last_boxed(text: str) -> str | None:
    """The content of the last complete box in `text`, searching backwards past unclosed ones."""
    end = len(text)
    while True:
        pos, command = max((text.rfind(c, 0, end), c) for c in _BOX_COMMANDS)
        if pos < 0:
            return None
        content = _box_content(text, pos, command)
        if content is not None:
            return content
        end = pos


def _clean_phrase_answer(answer: str) -> str:
    # str methods, not a `...$` regex: a backtracking regex is quadratic on a 1 MB junk line.
    answer = answer.rstrip(" \t\r.;,!")
    if answer.lower().endswith(_PLEASANTRY):
        answer = answer[: -len(_PLEASANTRY)].rstrip(" \t\r.;,!")
    if answer.startswith("$") and answer.count("$") >= 2:
        answer = answer[1 : answer.index("$", 1)]
    elif answer.startswith("\\(") and "\\)" in answer:
        answer = answer[2 : answer.index("\\)")]
    return answer.strip().strip("$").strip()


def extract_answer(text: str, *, last_number_fallback: bool = False) -> str | None:
    """Return the final answer written in `text`, or None when there is none.

    Order: the last complete `\\boxed{}`/`\\fbox{}` (nested braces allowed); else the last
    "Final Answer: ..." / "The (final) answer is ..." line; else GSM8K's `#### ...`; else, only
    when `last_number_fallback`, the last number in the text.
    """
    if not text:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "")
    boxed = last_boxed(text)
    if boxed is not None:
        boxed = boxed.strip()
        return boxed or None
    for pattern in (*_ANSWER_PHRASES, _GSM8K_MARK):
        last = None
        for last in pattern.finditer(text):
            pass
        if last is not None:
            answer = _clean_phrase_answer(last.group(1))
            # "Final Answer: The final answer is 12": matches cannot overlap, so look inside.
            for _ in range(3):
                inner = _ANSWER_PHRASES[0].search(answer) or _ANSWER_PHRASES[1].search(answer)
                if inner is None:
                    break
                answer = _clean_phrase_answer(inner.group(1))
            if answer:
                return answer
    if last_number_fallback:
        numbers = _LAST_NUMBER.findall(text[-10_000:])
        if numbers:
            return numbers[-1].rstrip(",")
    return None
