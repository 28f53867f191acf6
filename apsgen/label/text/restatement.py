"""A step that only restates the question: it cannot be a solution's first wrong step.

The step states no equation or operation and no conclusion, uses no word the question does not
(apart from articles, prepositions and pronouns), states the question's numbers in the question's
order, and each number appears in the question beside the same word (the one before it, or after it
when the word before is an article or preposition). A correct prefix plus a fact of the question is
still correct; a weak policy often stops finishing after one, so MC alone would call it the first
error. Linear in the text.
"""

from __future__ import annotations

from apsgen.label.text.equations import MAX_CHARS
from apsgen.label.text.prose import Tok, tokens

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
