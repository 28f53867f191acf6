"""A step that admits something before it was a mistake ("Wait, I made a mistake earlier.").

Either the admission is true, and an earlier step is wrong, or it is false, and the step itself is (a
correct step called wrong is a wrong claim): a prefix through it is wrong either way, and a right
answer reached after it is a recovery. Only first-person or deictic admissions count; "wait",
"let me check", "correct" or a double-check that confirms never do. One regex search.
"""

from __future__ import annotations

import re

from apsgen.label.text.equations import MAX_CHARS

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
