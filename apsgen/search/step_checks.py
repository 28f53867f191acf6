"""What a step's own text settles without any rollout: a false equation, a retraction, or a plain restatement.

Monte Carlo values measure whether the *policy* still finishes from a prefix, which is not the
same as whether the prefix is right. Three facts about a step can be read from its text with
certainty where they apply, and the search uses them before (and instead of) rollouts:

- **False arithmetic** (`false_equation`, `apsgen.search.arithmetic`): the step states an
  equation between plain numbers whose sides differ ("50 - 18 = 12", "4 \\times 8 = 24",
  "\\frac{28 \\times 27}{4} = 179"). Such a step is wrong whatever the policy does next, so a
  prefix ending at or after it is wrong, and a correct final answer reached through it does not make
  its path an all-good one. Prose and LaTeX math are read apart; a side is read only where it is
  whole plain numbers (never algebra, a term's tail such as the "4" of "3n - 4 = 70", units,
  percentages, or a list's next line), and an equation is false only where a careful reader would
  not accept it as meant (rounding, a division with a remainder, an approximation, an equation the
  text itself questions all hold). `apsgen bench checks` measures it on human labels.
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

All run in time linear in the text (regex scans; every side bounded); model output is never
evaluated or handed to sympy.
"""

from __future__ import annotations

import re

from apsgen.search.arithmetic import MAX_CHARS, false_equation, tokens

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


def retraction(text: str) -> str | None:
    """The words by which the step admits that something before it was a mistake, or None."""
    if len(text) > MAX_CHARS:
        return None
    found = _RETRACTION.search(text)
    return found.group().strip() if found is not None else None


def retracts(text: str) -> bool:
    """The step admits that something before it was a mistake (see the module doc)."""
    return retraction(text) is not None


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
