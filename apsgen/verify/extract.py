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


def all_boxed(text: str) -> list[str]:
    """The contents of every complete `\\boxed{...}` in `text`, in order (one linear stack pass)."""
    starts = [m.end() for m in _BOX.finditer(text)]
    if not starts:
        return []
    closing = _closing_braces(text, starts[0])
    out = []
    for i in starts:
        j = i
        while j < len(text) and text[j] in " \t":
            j += 1
        end = closing.get(j) if j < len(text) and text[j] == "{" else None
        if end is not None:
            out.append(text[j + 1 : end].strip())
    return out


# A solution that ends with a math block (`\\[ 9 \\]`, `$$ 9 $$`, `\\( 9 \\)`, `$9$`) announces
# its answer there, as "Answer \\[ 9 \\]" or "so the probability is $\\frac{5}{6}$." do.
_MATH_BLOCK_ENDS = (("\\]", "\\["), ("$$", "$$"), ("\\)", "\\("), ("$", "$"))


def trailing_math(text: str) -> str | None:
    """The content of the math block that ends `text` (trailing punctuation aside), or None."""
    tail = text.rstrip(" \t\r\n.;,!")
    for close, open_ in _MATH_BLOCK_ENDS:
        if tail.endswith(close):
            start = tail.rfind(open_, 0, len(tail) - len(close))
            if start < 0:
                return None
            content = tail[start + len(open_) : len(tail) - len(close)].strip()
            if close == "$" and tail.endswith("$$"):
                continue
            return content if 0 < len(content) <= MAX_EXTRACTED_CHARS else None
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


def extract_answer(
    text: str, *, last_number_fallback: bool = False, trailing_math_answer: bool = True, list_items: int = 0
) -> str | None:
    """Return the final answer written in `text`, or None when there is none.

    Order: the last complete `\\boxed{}`/`\\fbox{}` (nested braces allowed); else the last
    "Final Answer: ..." / "The (final) answer is ..." line; else GSM8K's `#### ...`; else, when
    `trailing_math_answer`, the math block the text ends with; else, only when
    `last_number_fallback`, the last number in the text. When the gold answer is a list of
    `list_items` >= 2 items and the last box holds one item, the last `list_items` boxes together
    are the answer ("the roots are \\boxed{2} and \\boxed{7}"). Texts over `MAX_SOLUTION_CHARS`
    and answers over `MAX_EXTRACTED_CHARS` give None. Linear time in the text. See POLICY.md.
    """
    if not text or too_long(text) is not None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "")
    boxed = last_boxed(text)
    if boxed is not None:
        boxed = boxed.strip()
        if list_items >= 2 and "," not in boxed:
            boxes = all_boxed(text)
            if len(boxes) >= list_items:
                boxed = ", ".join(boxes[-list_items:])
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
    if trailing_math_answer:
        math = trailing_math(text)
        if math is not None:
            return math
    if last_number_fallback:
        numbers = _LAST_NUMBER.findall(text[-10_000:])
        if numbers:
            return numbers[-1].rstrip(",")
    return None
