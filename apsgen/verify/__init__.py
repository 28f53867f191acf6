"""Answer verification: is a sampled solution's final answer equal to the gold answer?

`extract_answer` finds the answer in model text, `equivalent` compares two answers, `check`
does both for one solution, and `Verifier` is the batch form the search uses on its hot path
(one verdict cache and one pool of killable sympy workers shared by every call).
"""

from apsgen.verify.extract import extract_answer

# 3: a "wrong" from apsgen is confirmed by math-verify unless both sides are constants; closing
# sentences, equation chains, "and" lists, percentages. (2: closing math blocks, several boxes,
# six significant digits, e-notation, clock times.)
__version__ = "3"
from apsgen.verify.answer_check import Outcome, AnswerCheck
from apsgen.verify.verifier import Verifier, check, equivalent

__all__ = ["Outcome", "AnswerCheck", "Verifier", "check", "equivalent", "extract_answer"]
