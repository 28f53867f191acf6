"""What a step's own text settles without any rollout: a false equation, a retraction, or a plain restatement.

Monte Carlo values measure whether the *policy* still finishes from a prefix, which is not the
same as whether the prefix is right. Three facts about a step can be read from its text with
certainty where they apply, and the search uses them before (and instead of) rollouts:

- **False arithmetic** (`false_equation`): the step states `a op b = c` between plain numbers and
  the two sides differ ("50 - 18 = 12", "4 \\times 8 = 24"). Such a step is wrong whatever the
  policy does next, so a prefix ending at or after it is wrong, and a correct final answer reached
  through it does not make its path an all-good one. Only numbers, `+ - * / × · ÷ x`, LaTeX
  `\\times \\cdot \\div` and brackets are read; a side next to anything that could change its meaning
  (a letter, `%`, `^`, `!`, a brace, a word such as "of" or "times" before it) is not read at all, and
  a decimal right side is accepted when it is the left side rounded to its places. So the check
  never fires on algebra, units it cannot see, or percentages, and misses what it cannot parse.
- **Restatement** (`restates_question`): the step only repeats facts the question gives ("Sara has
  12 stickers.", "Each notebook costs 3 dollars and each pen costs 2 dollars."). It states no
  equation or operation and no conclusion, uses no word the question does not (apart from
  articles, prepositions and pronouns), states the question's numbers in the question's order,
  and each number appears in the question beside the same word (the one before it, or after it
  when the word before is an article or preposition). Such a step cannot
  be a solution's first wrong step: a correct prefix plus a fact of the question is still correct.
  A weak policy often stops finishing after one, so its MC value drops, and MC alone would call it
  the first error.

- **Retraction** (`retracts`): the step says that something before it was a mistake ("Wait, I
  made a mistake earlier.", "I miscalculated", "that was wrong", "Correction:"). Either the
  retraction is true, and an earlier step is wrong, or it is false, and the step itself is (a
  correct step called wrong is a wrong claim): a prefix through it is wrong either way, and a right
  answer reached after it is a recovery, not evidence that the prefix it started from was right.
  Only first-person or deictic admissions of an error count; a double-check that confirms ("let me
  verify: 3 + 4 = 7, yes") does not.

All run in time linear in the text (one regex scan; each side at most MAX_TOKENS tokens, each
number at most MAX_DIGITS digits); model output is never evaluated or handed to sympy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

MAX_DIGITS = 18  # a longer number is not read (no huge exact arithmetic on model output)
MAX_TOKENS = 41  # tokens per side of an equation; a longer side is not read
MAX_CHARS = 20_000  # a longer step (garbage, or no step breaks) is not read at all

_TOKEN = re.compile(
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])|\d+(?:\.\d+)?)"
    r"|(?P<op>\\times|\\cdot|\\div|[+\-−*/×·÷])"
    r"|(?P<open>[(\[]|\\left\(|\\left\[)"
    r"|(?P<close>[)\]]|\\right\)|\\right\])"
    r"|(?P<eq>=)"
    r"|(?P<space>\s+|\\?\$|\\[,;!: ]|\\\(|\\\)|\\\[|\\\])"
    r"|(?P<word>[A-Za-z]+)"
    r"|(?P<other>.)",
    re.DOTALL,
)
# Words right before a number that make the number part of a larger expression than we read.
_BINDING_WORDS = frozenset(
    "of times by per than plus minus half twice thrice double triple quarter third percent x".split()
)
_MUL = frozenset(("*", "×", "·", "\\times", "\\cdot", "x", "times"))
_DIV = frozenset(("/", "÷", "\\div"))


@dataclass(frozen=True)
class Tok:
    kind: str  # num, op, open, close, eq, word, other
    text: str
    glued: bool  # no space between it and the previous token


def tokens(text: str) -> list[Tok]:
    out: list[Tok] = []
    glued = True
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        if kind == "space":
            glued = False
            continue
        value = m.group()
        if kind == "word" and value in ("x", "times") and out and out[-1].kind == "num" and not glued:
            kind = "op"  # "2 x 3", "4 times 8": a times sign after a spaced number
        out.append(Tok(kind, value, glued))
        glued = True
    return out


def _number(text: str) -> Fraction | None:
    digits = text.replace(",", "")
    if len(digits.replace(".", "")) > MAX_DIGITS:
        return None
    return Fraction(digits)


class _Parser:
    """Recursive descent over number/operator/bracket tokens: sum := product (± product)*,
    product := factor ((×|÷) factor)*, factor := -factor | number | (sum)."""

    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.i = 0

    def parse(self) -> Fraction | None:
        try:
            value = self._sum(0)
        except (ValueError, ZeroDivisionError):
            return None
        return value if value is not None and self.i == len(self.toks) else None

    def _peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _sum(self, depth: int) -> Fraction | None:
        value = self._product(depth)
        while value is not None and (t := self._peek()) is not None and t.text in ("+", "-", "−"):
            self.i += 1
            right = self._product(depth)
            if right is None:
                return None
            value = value + right if t.text == "+" else value - right
        return value

    def _product(self, depth: int) -> Fraction | None:
        value = self._factor(depth)
        while value is not None and (t := self._peek()) is not None and (t.text in _MUL or t.text in _DIV):
            self.i += 1
            right = self._factor(depth)
            if right is None:
                return None
            value = value * right if t.text in _MUL else value / right
        return value

    def _factor(self, depth: int) -> Fraction | None:
        t = self._peek()
        if t is None or depth > 8:
            return None
        if t.text in ("-", "−"):
            self.i += 1
            inner = self._factor(depth + 1)
            return None if inner is None else -inner
        if t.kind == "num":
            self.i += 1
            return _number(t.text)
        if t.kind == "open":
            self.i += 1
            inner = self._sum(depth + 1)
            close = self._peek()
            if inner is None or close is None or close.kind != "close":
                return None
            self.i += 1
            return inner
        return None


_EXPR = frozenset(("num", "op", "open", "close"))


def _side(toks: list[Tok], start: int, stop: int) -> tuple[Fraction | None, int]:
    """The value of toks[start:stop] (a maximal run of expression tokens) and its operator count."""
    side = toks[start:stop]
    if not side or len(side) > MAX_TOKENS:
        return None, 0
    return _Parser(side).parse(), sum(1 for t in side if t.kind == "op")


def _left_bounded(toks: list[Tok], start: int) -> bool:
    """Nothing before the left side that could make it part of something larger."""
    if start == 0:
        return True
    before = toks[start - 1]
    if toks[start].glued and before.kind in ("word", "other"):
        return False  # "x2", "^3", "{5"
    if before.kind == "word":
        return before.text.lower() not in _BINDING_WORDS
    if before.kind == "eq":
        return True  # a chain: "x = 5 + 3 = 8"
    return before.kind == "other" and before.text in ",:;.?!\n"


def _right_bounded(toks: list[Tok], stop: int) -> bool:
    """Nothing after the right side that could make it part of something larger."""
    if stop == len(toks):
        return True
    after = toks[stop]
    if after.glued and after.kind in ("word", "other") and after.text not in ",.;:?!)":
        return False  # "4x", "10^3", "5%", "3!"
    return not (after.kind == "other" and after.text in "%^!{}_\\'")


def _equal(left: Fraction, right: Fraction, right_text: str) -> bool:
    if left == right:
        return True
    places = len(right_text.split(".")[1]) if "." in right_text else 0
    if places == 0:
        return False
    return abs(left - right) <= Fraction(1, 2 * 10**places)  # "10 / 3 = 3.33": rounded, not wrong


def false_equation(text: str) -> str | None:
    """The first equation in `text` whose two plain-number sides differ, as written; else None."""
    if len(text) > MAX_CHARS:
        return None
    toks = tokens(text)
    n = len(toks)
    i = 0
    while i < n:
        if toks[i].kind != "eq":
            i += 1
            continue
        lstart = i
        while lstart > 0 and toks[lstart - 1].kind in _EXPR:
            lstart -= 1
        rstop = i + 1
        while rstop < n and toks[rstop].kind in _EXPR:
            rstop += 1
        if lstart < i and rstop > i + 1 and _left_bounded(toks, lstart) and (rstop == n or toks[rstop].kind == "eq" or _right_bounded(toks, rstop)):
            left, ops = _side(toks, lstart, i)
            right, _ = _side(toks, i + 1, rstop)
            right_text = "".join(t.text for t in toks[i + 1 : rstop])
            if ops and left is not None and right is not None and not _equal(left, right, right_text):
                return " ".join(t.text for t in toks[lstart:rstop])
        i += 1
    return None


_CONCLUSION = frozenset(
    "so therefore thus hence total left remaining altogether answer result means gives get gets now "
    "all together sum difference product".split()
)
_STOP = frozenset(
    "a an the and each of in to for at on from is are was were with there it its he she they them their his "
    "her that which who".split()
)


def _stem(word: str) -> str:
    word = word.lower()
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _number_neighbours(toks: list[Tok]) -> dict[str, set[tuple[str, str]]]:
    """Each number's (word before, word after) pairs, stemmed, over the text's tokens."""
    out: dict[str, set[tuple[str, str]]] = {}
    for j, t in enumerate(toks):
        if t.kind != "num":
            continue
        before = _stem(toks[j - 1].text) if j > 0 and toks[j - 1].kind == "word" else ""
        after = _stem(toks[j + 1].text) if j + 1 < len(toks) and toks[j + 1].kind == "word" else ""
        out.setdefault(t.text.replace(",", ""), set()).add((before, after))
    return out


def restates_question(question: str, step: str) -> bool:
    """The step only repeats numbers the question states, each beside the same word, with no
    equation, operation or conclusion word (see the module doc)."""
    if len(step) > MAX_CHARS or len(question) > 4 * MAX_CHARS:
        return False
    toks = tokens(step)
    if any(t.kind in ("eq", "op") for t in toks) or "\\boxed" in step or "\\frac" in step:
        return False
    if any(t.kind == "word" and t.text.lower() in _CONCLUSION for t in toks):
        return False
    nums = [j for j, t in enumerate(toks) if t.kind == "num"]
    if not nums:
        return False
    qtoks = tokens(question)
    vocabulary = {_stem(t.text) for t in qtoks if t.kind == "word"}
    if any(t.kind == "word" and _stem(t.text) not in _STOP and _stem(t.text) not in vocabulary for t in toks):
        return False  # "one of them costs 2 dollars": words the question does not use say something new
    # the numbers in the question's order ("In 6 days, Mia reads 5 pages" joins two facts wrongly)
    order = iter(t.text.replace(",", "") for t in qtoks if t.kind == "num")
    if not all(any(q == toks[j].text.replace(",", "") for q in order) for j in nums):
        return False
    given = _number_neighbours(qtoks)
    for j in nums:
        pairs = given.get(toks[j].text.replace(",", ""))
        if not pairs:
            return False
        before = _stem(toks[j - 1].text) if j > 0 and toks[j - 1].kind == "word" else ""
        after = _stem(toks[j + 1].text) if j + 1 < len(toks) and toks[j + 1].kind == "word" else ""
        if before and before not in _STOP:
            if before not in {b for b, _ in pairs}:
                return False  # "He has 9 marbles" where the question says "gave 9 marbles"
        elif not (before and before in {b for b, _ in pairs}) and not (after and after in {a for _, a in pairs}):
            return False
    return True


# An admission that something earlier was wrong. Deliberately narrow: the words must say that a
# mistake was made or that a previous result is wrong, in the first person or about "that"/"the
# previous step"; "correct", "check" or "wait" alone never fire.
_RETRACTION = re.compile(
    r"\b(?:I|we)\s+(?:have\s+|had\s+|just\s+)?(?:made|make)\s+(?:a|an|one|some)?\s*"
    r"(?:small\s+|careless\s+|calculation\s+|arithmetic\s+|computational\s+)?(?:mistake|error|slip)s?\b"
    r"|\bmy\s+(?:mistake|error|bad)\b"
    r"|\b(?:I|we)\s+(?:miscalculated|miscounted|misread|misunderstood|messed\s+up|got\s+(?:that|it|this)\s+wrong)\b"
    r"|\b(?:I|we)\s+was\s+wrong\b|\b(?:I|we)\s+were\s+wrong\b"
    r"|\b(?:that|this|it|the\s+(?:previous|last|above|earlier)\s+(?:step|calculation|result|answer|computation))"
    r"\s*(?:is|was|'s|’s)\s+(?:wrong|incorrect|not\s+(?:right|correct)|a\s+mistake|an\s+error)\b"
    r"|\bthere\s+(?:is|was)\s+(?:a|an)\s+(?:mistake|error)\s+(?:in|above|earlier|before)\b"
    r"|\bmistake\s+(?:earlier|above|before)\b"
    r"|(?:^|\n)[ \t]*(?:\*\*)?correction[ \t]*(?:\*\*)?[ \t]*:",
    re.IGNORECASE,
)


def retracts(text: str) -> bool:
    """The step admits that something before it was a mistake (see the module doc)."""
    return len(text) <= MAX_CHARS and _RETRACTION.search(text) is not None


def text_error(step: str) -> str | None:
    """What the step's own text shows wrong: "arithmetic" (a false equation), "retraction" (it
    admits an earlier mistake), or None."""
    if false_equation(step) is not None:
        return "arithmetic"
    if retracts(step):
        return "retraction"
    return None


def continuation_error(text: str) -> str | None:
    """What a sampled continuation's text shows wrong, read a line at a time (a continuation is
    split into steps by the search only when it is searched, and an equation or an admission never
    spans a line break): the first line's `text_error`, or None. Linear in the text."""
    for line in text.splitlines():
        if line.strip():
            found = text_error(line)
            if found is not None:
                return found
    return None
