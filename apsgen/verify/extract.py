"""Find the final answer in a model's solution text: `\\boxed{}`, "The answer is", `####`, last number.

Model output is untrusted and may be truncated mid-expression, so every scan here is linear in
the text length and tolerates unbalanced braces.
"""

from __future__ import annotations

import re

from apsgen.verify.brackets import closing_braces, matching_brace, split_top_level

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


# A box command and the blanks after it; group 1 is the `{` that opens its content, if any.
_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])[ \t]*(\{)?")
_BOX_WORD = re.compile(r"[^\s$]+")


def last_boxed(text: str) -> str | None:
    """The content of the last complete box in `text` (`\\boxed{...}` with nested braces, or
    `\\boxed 5`); unclosed boxes are skipped. Linear in the text: the last box is matched
    directly (the usual case), and only if it is unclosed does one stack pass over the text from
    the first box on decide the others, whatever a degenerate output holds."""
    box = _last_box(text)
    return None if box is None else box[0]


def _last_box(text: str) -> tuple[str, int] | None:
    """`last_boxed`'s content and the index where that box ends."""
    # Per box: where its `{` is (-1 for `\\boxed 5` or a bare `\\boxed`), and where it ends.
    braces = [m.start(1) for m in _BOX.finditer(text)]
    if not braces:
        return None
    closing: dict[int, int] | None = None
    words: list[re.Match[str]] | None = None
    for n in range(len(braces) - 1, -1, -1):
        j = braces[n]
        if j >= 0:
            if n == len(braces) - 1:
                end = matching_brace(text, j)
            else:
                if closing is None:
                    closing = closing_braces(text, next(i for i in braces if i >= 0))
                    if not closing and -1 not in braces:
                        return None  # nothing closes, and no box is a `\\boxed 5`
                end = closing.get(j)
            if end is not None:
                return text[j + 1 : end], end
        else:
            if words is None:
                words = list(_BOX.finditer(text))
            box = words[n]
            if box.end() > box.start() + 6 and text[box.end() - 1] in " \t":
                word = _BOX_WORD.match(text, box.end())  # `\\boxed 5`: TeX takes one token
                if word:
                    return word.group(0), word.end()
    return None


def all_boxed(text: str) -> list[str]:
    """The contents of every complete `\\boxed{...}` in `text`, in order (one linear stack pass)."""
    return [content for _, _, content in boxed_spans(text)]


def boxed_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, stripped content) of every complete `\\boxed{...}` in `text`, in order."""
    boxes = [(m.start(), m.start(1)) for m in _BOX.finditer(text)]
    braces = [j for _, j in boxes if j >= 0]
    if not braces:
        return []
    closing = closing_braces(text, braces[0])
    return [(i, closing[j] + 1, text[j + 1 : closing[j]].strip()) for i, j in boxes if j in closing]


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


# How a closing sentence states its answer: bold (`**12 tomatoes**`), a math block, or a plain
# number (`$8`, `1,250`, `3/4`, `-2.5`). A sentence opens with one of these words when it concludes.
_BOLD = re.compile(r"\*\*([^*]{1,200})\*\*")
_INLINE_MATH = re.compile(r"\\\((.{1,500}?)\\\)|\\\[(.{1,500}?)\\\]", re.S)
_NUMBER = re.compile(
    r"(?<![\w.])(-|\u2212)?\s?\\?\$?\s?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:/\d+)?)(?!\d)"
)
_CONCLUSION = re.compile(
    r"(?:therefore|thus|so|hence|in total|in conclusion|in summary|finally|overall|altogether|"
    r"consequently|this means|the answer|answer)\b",
    re.IGNORECASE,
)
# A full stop (perhaps closing a math block: `.$$`, `.\]`) and the next sentence's first character.
_SENTENCE_END = re.compile(r"(?<=[.!?])(?:\$\$|\\\]|\$|\))?\s+(?=[*(\\$A-Z0-9])")
_WORDS = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}")
# A sentence without a full stop still states its answer when it ends with it: `... is 1,000.99€`.
_ENDS_WITH_QUANTITY = re.compile(r"\d(?:\s?(?:[%€£¥$]|[a-zA-Z]{1,2}[²³]?))?\**$")
# A closing sentence is looked for in this much of the solution's end only: linear, and bounded.
_CLOSING_WINDOW = 2_000


def sentence_answer(sentence: str) -> str | None:
    """The answer a prose sentence states ("Freda used **12 tomatoes**", "Raymond has $8 left",
    "the total is \\(\\$440\\)"): a bold part with a number, else the last math block, else
    the last number; None when it states no number. Linear in the sentence."""
    for m in reversed(list(_BOLD.finditer(sentence))):
        number = _last_number(m.group(1))
        if number is not None:
            return number
    blocks = [a or b for a, b in _INLINE_MATH.findall(sentence)]
    if sentence.count("$") % 2 == 0 and "$$" not in sentence:
        # `$...$` is math only when paired and not prose: "has $8 and $9 left" holds dollars.
        blocks += [b for b in sentence.split("$")[1::2] if b.strip() and not _is_prose(b)]
    for block in reversed(blocks):
        if any(c.isdigit() for c in block):
            return block.strip()
    return _last_number(sentence)


def _last_number(text: str) -> str | None:
    last = None
    for last in _NUMBER.finditer(text):
        pass
    return None if last is None else ("-" if last.group(1) else "") + last.group(2)


def closing_sentence(text: str) -> str | None:
    """The last sentence of `text` when it concludes: it ends with a full stop and opens with a
    concluding word ("Therefore, Raymond has $8 left.", "**Answer:** ..."), makes up the whole
    last paragraph ("Elvis is 54 miles east of his house."), or states its number in bold.
    None otherwise."""
    tail = text[-_CLOSING_WINDOW:].rstrip()
    paragraph = tail[tail.rfind("\n\n") + 2 :] if "\n\n" in tail else tail
    paragraph = paragraph[paragraph.rfind("\n") + 1 :].strip() if "\n" in paragraph else paragraph.strip()
    sentences = [s for s in _SENTENCE_END.split(paragraph) if s.strip()]
    if len(sentences) > 1 and sentences[-1].strip(" .!").lower() == _PLEASANTRY:
        sentences.pop()
    if not sentences:
        return None
    last = sentences[-1].strip()
    if not last.rstrip("*_ ").endswith((".", "!")) and _ENDS_WITH_QUANTITY.search(last) is None:
        return None  # cut off mid-sentence, or a formula: working, not a statement
    opening = last.lstrip("*#>- ").lstrip()
    if len(sentences) == 1 or _CONCLUSION.match(opening) or _BOLD.search(last):
        return last
    return None


def _is_prose(answer: str) -> bool:
    """An announced "answer" that is a sentence of words ("Verna received $7.00 in change")."""
    return len(_WORDS.findall(_TEXT_BODY.sub(" ", answer))) >= 2


_TEXT_BODY = re.compile(r"\\(?:text|mathrm|textbf|mbox)\s*\{[^{}]*\}")


def _phrase_answer(text: str) -> tuple[str, int] | None:
    """The answer an announcing phrase gives ("The final answer is ...", "Answer: ...", GSM8K's
    `####`), the most specific phrase first, and where that phrase starts; None without one."""
    for pattern in (*_ANSWER_PHRASES, _GSM8K_MARK):
        last = None
        for last in pattern.finditer(text):
            pass
        if last is None:
            continue
        answer = _clean_phrase_answer(last.group(1))
        # "Final Answer: The final answer is 12": matches cannot overlap, so look inside.
        for _ in range(3):
            inner = _ANSWER_PHRASES[0].search(answer) or _ANSWER_PHRASES[1].search(answer)
            if inner is None:
                break
            answer = _clean_phrase_answer(inner.group(1))
        if answer and len(answer) <= MAX_EXTRACTED_CHARS and _is_prose(answer):
            answer = sentence_answer(answer) or answer
        if answer:
            return (answer, last.start()) if len(answer) <= MAX_EXTRACTED_CHARS else None
    return None


def announced_answer(text: str) -> str | None:
    """The answer an announcing phrase gives ("Final Answer: The final answer is $28\\%$"), or
    None: how a worked gold solution without a box states its answer."""
    if not text or too_long(text) is not None:
        return None
    found = _phrase_answer(_before_next_turn(text))
    return found[0] if found is not None else None


# Where a chat model starts the next turn (or ends its own), whatever follows is not its answer.
_TURN_MARKERS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "</s>")
# A whole completion this short, on one line and not a sentence, is an answer by itself.
_BARE_ANSWER_CHARS = 200


# A word of prose stands apart: letters glued to digits or operators are math (`ab+2a`), and an
# environment's name (`\begin{bmatrix}`) is markup.
_PROSE_WORD = re.compile(r"(?<![^\s(])[a-zA-Z]{2,}(?![^\s.,;:!?)])")
_ENVIRONMENT = re.compile(r"\\(?:begin|end)\s*\{[a-zA-Z*]{1,20}\}")


def _is_bare_answer(text: str) -> bool:
    """Math with no words, a quantity with one unit word (`28 percent`), or one word (`east`)."""
    words = _PROSE_WORD.findall(_ENVIRONMENT.sub(" ", _TEXT_BODY.sub(" ", text)))
    if not words:
        return True
    if len(words) > 1:
        return False
    return text[0].isdigit() or text[0] in "-+.$\\" or text == words[0]


def _before_next_turn(text: str) -> str:
    if "<" not in text:
        return text
    cut = min((i for i in (text.find(m) for m in _TURN_MARKERS) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


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
    text: str,
    *,
    last_number_fallback: bool = False,
    trailing_math_answer: bool = True,
    closing_sentence_answer: bool = True,
    list_items: int = 0,
) -> str | None:
    """Return the final answer written in `text`, or None when there is none.

    Order: the last complete `\\boxed{}`/`\\fbox{}` (nested braces allowed); else the last
    "Final Answer: ..." / "The (final) answer is ..." line; else GSM8K's `#### ...`; else, when
    `trailing_math_answer`, the math block the text ends with; else, when
    `closing_sentence_answer`, the number a concluding last sentence states ("Therefore, the rope
    is 20 centimeters."); else, only when `last_number_fallback`, the last number in the text. When the gold answer is a list of
    `list_items` >= 2 items and the last box holds one item, the last `list_items` boxes together
    are the answer ("the roots are \\boxed{2} and \\boxed{7}"). Texts over `MAX_SOLUTION_CHARS`
    and answers over `MAX_EXTRACTED_CHARS` give None. Linear time in the text. See POLICY.md.
    """
    if not text or too_long(text) is not None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "")
    text = _before_next_turn(text)
    box = _last_box(text)
    phrase = _phrase_answer(text)
    # A box wins, unless an announced answer comes after it ("... = \boxed{255}. So she has
    # $10,455. The final answer is $10,455$."): the last statement is the final one.
    if box is not None and (phrase is None or phrase[1] < box[1]):
        boxed = box[0].strip()
        if list_items >= 2 and len(split_top_level(boxed, ",")) < 2:
            boxes = all_boxed(text)
            if len(boxes) >= list_items:
                boxed = ", ".join(boxes[-list_items:])
        return boxed if 0 < len(boxed) <= MAX_EXTRACTED_CHARS else None
    if phrase is not None:
        return phrase[0]
    if trailing_math_answer:
        math = trailing_math(text)
        if math is not None:
            return math
    bare = text.strip().strip("$").strip()
    if 0 < len(bare) <= _BARE_ANSWER_CHARS and "\n" not in bare and _is_bare_answer(bare):
        return bare  # the whole completion is an answer: `-5`, `7,425,000`, `28 %`, `east`
    if closing_sentence_answer:
        sentence = closing_sentence(text)
        if sentence is not None:
            answer = sentence_answer(sentence)
            if answer is not None:
                return answer
    if last_number_fallback:
        numbers = _LAST_NUMBER.findall(text[-10_000:])
        if numbers:
            return numbers[-1].rstrip(",")
    return None
