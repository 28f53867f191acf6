"""Size guards run on an answer's text before it may reach sympy.

sympy evaluates integer arithmetic eagerly: `9^{9^{9}}` or `(10^8)!` would allocate gigabytes
long before any timeout fires. These checks are linear scans over short strings; an answer they
refuse is reported as not equal (no real answer to a math problem looks like that).
"""

from __future__ import annotations

import re

from apsgen.verify.brackets import deepest, matching_brace

MAX_SYMBOLIC_CHARS = 400
MAX_NESTING = 24
MAX_LITERAL_DIGITS = 60
MAX_EXPONENT = 2_000
MAX_FACTORIAL = 500
_NUMBER = re.compile(r"\d+")
_EXPONENT_LITERAL = re.compile(r"\^\s*\{?\s*-?\s*(\d+)")
_FACTORIAL_OF_NUMBER = re.compile(r"(\d+)\s*!")
_COMBINATORICS = re.compile(r"\\(?:binom|dbinom|tbinom|choose|Gamma)|!\s*!")
_CHAINED_POWER = re.compile(r"\^\s*(?:\d+|\{[^{}]*\})\s*\^")


def _exponent_group(text: str, caret: int) -> str:
    """The exponent after the `^` at `caret`: a braced group (to its match) or one token."""
    i = caret + 1
    while i < len(text) and text[i] == " ":
        i += 1
    if i < len(text) and text[i] == "{":
        end = matching_brace(text, i)
        return text[i + 1 : end] if end is not None else text[i + 1 :]
    return text[i : i + 1]


def refusal_reason(text: str) -> str | None:
    """Why `text` may not be handed to sympy, or None when it is safe to try."""
    if len(text) > MAX_SYMBOLIC_CHARS:
        return f"{len(text)} characters (limit {MAX_SYMBOLIC_CHARS})"
    nesting = deepest(text)
    if nesting > MAX_NESTING:
        return f"brackets nested {nesting} deep (limit {MAX_NESTING})"
    if any(len(n) > MAX_LITERAL_DIGITS for n in _NUMBER.findall(text)):
        return f"a number longer than {MAX_LITERAL_DIGITS} digits"
    for match in _EXPONENT_LITERAL.finditer(text):
        if int(match.group(1)) > MAX_EXPONENT:
            return f"exponent {match.group(1)} (limit {MAX_EXPONENT})"
    if _CHAINED_POWER.search(text):
        return "a chain of powers"
    caret = text.find("^")
    while caret >= 0:
        exponent = _exponent_group(text, caret)
        if "^" in exponent or "!" in exponent:
            # A tower: even small literals (9^{9^{9}}) explode. Symbols keep it symbolic.
            if any(c.isdigit() for c in exponent) and not any(c.isalpha() for c in exponent):
                return "a power tower of numbers"
        caret = text.find("^", caret + 1)
    for match in _FACTORIAL_OF_NUMBER.finditer(text):
        if int(match.group(1)) > MAX_FACTORIAL:
            return f"factorial of {match.group(1)} (limit {MAX_FACTORIAL})"
    if re.search(r"[)}]\s*!", text):
        return "a factorial of an expression"
    if _COMBINATORICS.search(text) and any(len(n) > 3 for n in _NUMBER.findall(text)):
        return "a combinatorial function of large numbers"
    return None
