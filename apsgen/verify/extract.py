"""Find the final answer in a model's solution text: `\\boxed{}`, "The answer is", `####`, last number.

Model output is untrusted and may be truncated mid-expression, so every scan here is linear in
the text length and tolerates unbalanced braces.
"""

from __future__ import annotations

import re

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

# Caps on what is parsed in-process. A solution longer than this is a degenerate generation (a
# 16k-token chain of thought is about 60 KB); an "answer" longer than that is no answer. Either
# way the sample is `no_answer`, and `too_long()` says which cap it hit.
MAX_SOLUTION_CHARS = 262_144
MAX_EXTRACTED_CHARS = 2_000


def too_long(text: str) -> str | None:
    """Why `text` is not parsed at all, or None."""
    if len(text) > MAX_SOLUTION_CHARS:
        return f"solution of {len(text):,} characters is over the {MAX_SOLUTION_CHARS:,} parsed"
    return None


# A brace or an escaped character: `\\{` and `\\}` are literal braces, not grouping. Scanning these
# tokens with a regex skips ordinary text in C, not in a Python loop.
_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.S)


def _matching_brace(text: str, start: int) -> int | None:
    """Index of the `}` closing the `{` at `start`, or None when it is never closed."""
    depth = 0
    for m in _BRACE_TOKEN.finditer(text, start):
        token = m.group()
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth == 0:
                return m.start()
    return None


def _closing_braces(text: str, start: int) -> dict[int, int]:
    """For every `{` at or after `start` that is closed, the index of its `}` (one stack pass)."""
    closing: dict[int, int] = {}
    stack: list[int] = []
    for m in _BRACE_TOKEN.finditer(text, start):
        token = m.group()
        if token == "{":
            stack.append(m.start())
        elif token == "}" and stack:
            closing[stack.pop()] = m.start()
    return closing


_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BOX_WORD = re.compile(r"[^\s$]+")


def last_boxed(text: str) -> str | None:
    """The content of the last complete box in `text` (`\\boxed{...}` with nested braces, or
    `\\boxed 5`); unclosed boxes are skipped. Linear in the text: the last box is matched
    directly (the usual case), and only if it is unclosed does one stack pass over the text from
    the first box on decide the others, whatever a degenerate output holds."""
    starts = [m.end() for m in _BOX.finditer(text)]
    closing: dict[int, int] | None = None
    for n, i in enumerate(reversed(starts)):
        j = i
        while j < len(text) and text[j] in " \t":
            j += 1
        if j < len(text) and text[j] == "{":
            if n == 0:
                end = _matching_brace(text, j)
            else:
                if closing is None:
                    closing = _closing_braces(text, starts[0])
                end = closing.get(j)
            if end is not None:
                return text[j + 1 : end]
        elif j > i:  # `\boxed 5`: TeX takes one token; policies write one word
            word = _BOX_WORD.match(text, j)
            if word:
                return word.group(0)
    return None


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
    when `last_number_fallback`, the last number in the text. Texts over `MAX_SOLUTION_CHARS` and
    answers over `MAX_EXTRACTED_CHARS` give None. Linear time in the text.
    """
    if not text or too_long(text) is not None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "")
    boxed = last_boxed(text)
    if boxed is not None:
        boxed = boxed.strip()
        return boxed if 0 < len(boxed) <= MAX_EXTRACTED_CHARS else None
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
                return answer if len(answer) <= MAX_EXTRACTED_CHARS else None
    if last_number_fallback:
        numbers = _LAST_NUMBER.findall(text[-10_000:])
        if numbers:
            return numbers[-1].rstrip(",")
    return None
