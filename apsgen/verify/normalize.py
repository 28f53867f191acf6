"""Rewrite an answer string into a canonical form following the MATH dataset's conventions.

Two answers with the same normalised form are equal; the cache is keyed by these forms. Only
cheap, linear string rewrites live here; nothing is parsed into numbers or expressions.
"""

from __future__ import annotations

import re
from functools import lru_cache

from apsgen.verify.brackets import matching_brace, split_top_level

# Past this many characters an answer is not rewritten at all: it can still match its exact
# twin, but no regex is run over megabytes of untrusted text on the hot path.
MAX_NORMALIZE_CHARS = 5_000

_REMOVALS = (
    "\\left", "\\right", "\\bigl", "\\bigr", "\\Bigl", "\\Bigr", "\\big", "\\Big",
    "\\displaystyle", "\\!", "\\,", "\\;", "\\:", "\\ ", "\\quad", "\\qquad", "\\limits",
)
_DEGREE_MARKS = ("^{\\circ}", "^\\circ", "^{\\degree}", "\\degree", "°", "{}^\\circ", "\\circ")
_TEXT_COMMANDS = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox|operatorname|mathit)\s*\{([^{}]*)\}")
_UNIT_WORDS = {
    "cm", "centimeter", "centimeters", "m", "meter", "meters", "km", "kilometers", "mm",
    "inch", "inches", "in", "foot", "feet", "ft", "yard", "yards", "mile", "miles", "mph",
    "unit", "units", "sq", "square", "cubic", "degree", "degrees", "radian", "radians",
    "cent", "cents", "dollar", "dollars", "second", "seconds", "minute", "minutes", "hour",
    "hours", "day", "days", "week", "weeks", "month", "months", "year", "years", "people",
    "students", "times", "ways", "pounds", "ounces", "gallons", "liters", "grams", "kg",
    "g", "mg", "lb", "lbs", "oz", "points", "percent", "percentage", "pct", "calories", "marbles", "apples",
}
_BACKSLASH_DIGIT = re.compile(r"(?<!\\)\\(?=\d)")
_SPACED_COMMA = re.compile(r",\s")
_AND_LIST = re.compile(r"\s*,?\s+(?:and|or)\s+(?=\S)")
# A thousands group never starts with 0: `0,111` is a decimal comma, not one hundred eleven.
_THOUSANDS = re.compile(r"^-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$")
# A unit or remark in words after a quantity: `17\text{ any text}`, `5\mbox{ cm}^2`.
_TRAILING_TEXT = re.compile(r"(?<=[\d}])\s*\\(?:text|textrm|mbox|mathrm)\s*\{[^{}]*\}(?:\^\{?[23]\}?)?\s*$")
# A named value in a list of them: `AB=4`, `a_{37} = 19`, `\alpha = 2` (the name goes).
_NAMED_ITEM = re.compile(r"^\s*\\?[a-zA-Z]{1,3}(?:_\{?[a-zA-Z0-9]{1,4}\}?)?\s*=\s*(?=\S)")
_VAR = r"\\?[a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?"
# `x = 11`, `x \in [0,1]`, `(p,q,r) = (3,2,7)`, `V_1:V_2 = 11:21`: the value is the right-hand side.
_ASSIGNMENT = re.compile(
    rf"^(?:{_VAR}|\(\s*{_VAR}(?:\s*,\s*{_VAR})+\s*\)|{_VAR}(?:\s*:\s*{_VAR})+)\s*(?:=|\\in)\s*(?=\S)"
)
_ARRAY_ENV = re.compile(r"\\begin\{array\}\{[^{}]*\}")
_MATRIX_ENVS = ("bmatrix", "Bmatrix", "vmatrix", "Vmatrix", "smallmatrix", "matrix")
_CHOICE = re.compile(r"^\(?([A-E])\)?$")
_FRAC_SHORT = re.compile(
    r"\\frac\s*(\d|\{[^{}]*\}|\\[a-zA-Z]+|[a-zA-Z])\s*(\d|\{[^{}]*\}|\\[a-zA-Z]+|[a-zA-Z])"
)
_SQRT_SHORT = re.compile(r"\\sqrt\s*(\d|\\[a-zA-Z]+|[a-zA-Z])")
_TRAILING_ZEROS = re.compile(r"(\d+\.\d*?)0+(?!\d)")
_BARE_POINT = re.compile(r"(?<![\d}])\.(\d)")
_SPACE_AFTER_COMMAND = re.compile(r"(\\[a-zA-Z]+) +(?=[a-zA-Z0-9])")
_SUBSCRIPT_BRACES = re.compile(r"_\{(\w+)\}")
_BRACED_SINGLE = re.compile(r"\^\{(\w)\}")


def _strip_text_wrappers(s: str) -> str:
    # Applied until stable so that \text{\textbf{x}} unwraps fully; each pass shrinks `s`.
    for _ in range(4):
        new = _TEXT_COMMANDS.sub(r" \1 ", s)
        if new == s:
            break
        s = new
    return s


def _strip_units(s: str) -> str:
    """Drop trailing unit words after a quantity: `5.4 cents`, `864 inches ^2`, `3 sq units`."""
    tokens = s.split(" ")
    end = len(tokens)
    if end > 1 and tokens[-1] in ("^2", "^3", "^{2}", "^{3}"):
        end -= 1
    while end > 1 and tokens[end - 1].rstrip(".").lower() in _UNIT_WORDS:
        end -= 1
    if end == len(tokens) or end == 0:
        return s
    head = " ".join(tokens[:end])
    # Only a quantity carries units; `\cot x` or `2 k` must keep their letters.
    return head if head[-1:].isdigit() or head.endswith("}") else s


def _frac_arg(arg: str) -> str:
    return arg if arg.startswith("{") else "{" + arg + "}"


def normalize(answer: str) -> str:
    """Canonical form of one answer string (already extracted from its solution)."""
    # Rollouts repeat answers, so short ones are memoised; long ones would only bloat the memo.
    return _normalize_cached(answer) if len(answer) <= 256 else _normalize(answer)


@lru_cache(maxsize=65_536)
def _normalize_cached(answer: str) -> str:
    return _normalize(answer)


def _normalize(answer: str) -> str:
    s = answer.strip()
    if len(s) > MAX_NORMALIZE_CHARS:
        return s
    # `32, 349` lists two numbers; `32,349` and `32,\! 349` are one (thousands carry no space).
    spaced_list = _SPACED_COMMA.search(s) is not None
    if "\x00" in s:
        s = s.replace("\x00", "")
    # Lone surrogates (invalid unicode from a broken decoder) would make later encoding fail.
    s = s.encode("utf-8", "replace").decode("utf-8")
    s = s.replace("\n", " ").replace("\t", " ").replace("\r", " ").replace("~", " ")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = s.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "")
    # `\boxed{\15}`: a `\$` that lost its dollar; a backslash before a digit is no TeX command.
    s = _BACKSLASH_DIGIT.sub("", s)
    s = s.replace("{,}", "").replace("\\dots", "\\ldots").replace("\\cdots", "\\ldots")
    s = s.replace("\\le ", "\\leq ").replace("\\ge ", "\\geq ")
    s = s.replace(">=", "\\geq ").replace("<=", "\\leq ").replace("≥", "\\geq ").replace("≤", "\\leq ")
    s = s.replace("\\leqslant", "\\leq").replace("\\geqslant", "\\geq")
    s = s.replace("\\lbrace", "\\{").replace("\\rbrace", "\\}")
    s = s.replace("\\infinity", "\\infty").replace("∞", "\\infty").replace("π", "\\pi")
    s = s.replace("\\neq", "\\ne").replace("√", "\\sqrt")
    # `\\` separates matrix rows; hide it so that removing `\ ` (a TeX space) cannot split it.
    s = s.replace("\\\\", "\x01")
    for token in _REMOVALS:
        if token in s:
            # `\left.` and `\right.` are invisible delimiters: drop the dot with them.
            s = s.replace(token + ".", "").replace(token, "")
    for mark in _DEGREE_MARKS:
        s = s.replace(mark, "")
    s = s.replace("\x01", "\\\\")
    if "\\begin" in s:  # one spelling for a matrix: pmatrix (the brackets around an array go too)
        s = _ARRAY_ENV.sub("\\\\begin{pmatrix}", s).replace("\\end{array}", "\\end{pmatrix}")
        for env in _MATRIX_ENVS:
            s = s.replace("\\begin{%s}" % env, "\\begin{pmatrix}").replace("\\end{%s}" % env, "\\end{pmatrix}")
        t = s.strip()
        if t[:1] in "[(" and t[-1:] in "])" and t[1:].lstrip().startswith("\\begin{pmatrix}") \
                and t[:-1].rstrip().endswith("\\end{pmatrix}"):
            s = t[1:-1]
    if s.endswith("\\") and not s.endswith("\\\\"):
        s = s[:-1]  # `185\`: a backslash left over from a `\$` or a line break
    s = _TRAILING_TEXT.sub("", s)
    s = _strip_text_wrappers(s)
    s = re.sub(r"\s+", " ", s).strip()
    # `7 \text{ and } -5`, `2, 3, and 4`, `21, 16 or 11`: a list written in words.
    s = _AND_LIST.sub(",", s)
    s = _strip_units(s)
    s = _named_values(s)
    if s.count("=") <= 1:  # `z = 1 + 1 = 2` stays a chain: its value is its last side
        s = _ASSIGNMENT.sub("", s)
    s = s.replace("\\text", "").replace("\\mbox", "")
    if s.endswith("."):
        s = s.rstrip(".")
    s = _FRAC_SHORT.sub(lambda m: "\\frac" + _frac_arg(m.group(1)) + _frac_arg(m.group(2)), s)
    s = _SQRT_SHORT.sub(r"\\sqrt{\1}", s)
    # Spaces carry no meaning in LaTeX except after a command word (`\pi r` is not `\pir`).
    s = _SPACE_AFTER_COMMAND.sub("\\1\x00", s).replace(" ", "").replace("\x00", " ")
    if _THOUSANDS.match(s) and not spaced_list:
        s = s.replace(",", "")
    s = _BARE_POINT.sub(r"0.\1", s)
    if "." in s:
        s = _TRAILING_ZEROS.sub(r"\1", s)
        s = re.sub(r"(\d)\.(?![\d\\])", r"\1", s)
    s = _SUBSCRIPT_BRACES.sub(r"_\1", s)
    s = _BRACED_SINGLE.sub(r"^\1", s)
    choice = _CHOICE.match(s)
    if choice:
        s = choice.group(1)
    if s.startswith("{") and s.endswith("}") and _balanced_group(s):
        s = s[1:-1]
    return s


def _named_values(s: str) -> str:
    """A list of named values is the list of the values: `AB=4, CD=5` is `4, 5`; groups split
    by `;` are tuples (`p=5,q=2;p=7,q=2` is `(5,2),(7,2)`). Anything else is returned as it is."""
    if "=" not in s or s.count("=") < 2:
        return s
    groups = [split_top_level(g, ",") for g in split_top_level(s, ";")]
    values = []
    for group in groups:
        items = []
        for item in group:
            named = _NAMED_ITEM.match(item)
            if named is None or "=" in item[named.end() :]:
                return s
            items.append(item[named.end() :].strip())
        values.append(items)
    if len(values) == 1:
        return ", ".join(values[0])
    return ", ".join("(" + ", ".join(v) + ")" for v in values)


def _balanced_group(s: str) -> bool:
    """True when the first `{` of `s` closes at its last character."""
    return matching_brace(s, 0) == len(s) - 1
