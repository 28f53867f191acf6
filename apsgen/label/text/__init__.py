"""What a step's own text settles without any rollout: a false equation, a retraction, or a plain restatement.

Monte Carlo values measure whether the *policy* still finishes from a prefix, which is not the
same as whether the prefix is right. Three facts about a step can be read from its text with
certainty where they apply, and the search uses them before (and instead of) rollouts:

- **False arithmetic** (`false_equation`, `apsgen.label.text.equations`): the step states an
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

from apsgen.label.text.equations import MAX_CHARS, false_equation
from apsgen.label.text.prose import tokens
from apsgen.label.text.restatement import restates_question
from apsgen.label.text.retraction import retraction, retracts

__all__ = ["MAX_CHARS", "continuation_error", "false_equation", "restates_question", "retraction", "retracts",
           "text_error", "tokens"]


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
