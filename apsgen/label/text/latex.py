"""Equations between plain numbers inside LaTeX math (`\\[...\\]`, `\\(...\\)`, `$$...$$`,
`$...$`, align-like environments), read with the verifier's bounded expression parser and exact
evaluator (`apsgen.verify.expr`, `apsgen.verify.evaluate`): fractions, powers, roots, factorials,
binomials, `\\times \\cdot \\div`.

Inside math a side is what lies between two relation or punctuation marks (`=`, `<`, `\\le`,
`\\implies`, `\\quad`, `,`, `;`, a row break), so where a side starts is never a guess: a side with
a letter anywhere in it (a variable, a named quantity in `\\text{}`, a unit, `e`, `i`) is not
plain numbers and is not read, nor is one that starts with a binary operator (a term's tail), one
with a command the parser does not know (`\\pm`, `\\mod`, `\\cdots`, `\\circ`, `\\%`), or one the
parser would read otherwise than a writer may mean (square brackets, which many texts use for the
greatest integer; `!!`; trigonometry, often in degrees without `^\\circ`; `\\log` without a base). A row
that starts with `=` continues the row before it (aligned chains). `$` is a currency sign, not
math, where it is followed by a digit at the end of a would-be span or the span holds words.
Every pass is linear in the text; each side is parsed only when it is short.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from apsgen.label.text.equation import Equation
from apsgen.verify.brackets import split_top_level
from apsgen.verify.evaluate import Undefined, Value, evaluate
from apsgen.verify.expr import Unsupported, free_variables, parse_expr_latex

MAX_SIDE_CHARS = 200

_DELIMITER = re.compile(
    r"\\\[|\\\]|\\\(|\\\)|\$\$|\\?\$"
    r"|\\begin\{(?:align|aligned|equation|gather|gathered|eqnarray|multline|split)\*?\}"
    r"|\\end\{(?:align|aligned|equation|gather|gathered|eqnarray|multline|split)\*?\}"
)
_CLOSER = {"\\[": "\\]", "\\(": "\\)", "$$": "$$", "$": "$"}
_WORD = re.compile(r"(?<!\\)\b[A-Za-z]{2,}")
_NAMED = re.compile(r"\\(?:text|mbox|mathrm|textbf|textit|operatorname)\s*\{[^{}]{0,200}\}")
_THOUSANDS = re.compile(r"(?<=\d)(?:,|\{,\})(?:\\[!,])?(?=\d{3}(?!\d))")
_DROP = re.compile(r"\\(?:left|right|displaystyle|boxed)(?![A-Za-z])|\\[,;:! $]|&")
_ROW = re.compile(r"\\\\|\n")
_SEPARATOR = re.compile(
    r"\\(?:quad|qquad|implies|Rightarrow|Longrightarrow|rightarrow|longrightarrow|to|iff|approx|neq|ne|le|ge"
    r"|leq|geq|equiv|lt|gt|sim|cong|therefore|because)(?![A-Za-z])|[<>;,:]"
)
_LETTER = re.compile(r"[A-Za-z]")
# What the parser would read differently from what a writer may mean: square brackets (the
# greatest-integer function in many texts), a double factorial, trigonometry (degrees are often
# meant without a `^\circ`), a logarithm without a base (10 or e).
_AMBIGUOUS = re.compile(
    r"!!|[\[\]]|\\(?:sin|cos|tan|cot|sec|csc|arcsin|arccos|arctan|sinh|cosh|tanh)(?![A-Za-z])|\\log(?![A-Za-z_])"
)
_COMMAND = re.compile(r"\\[A-Za-z]+")
_LEADING_OPERATOR = re.compile(r"\s*(?:[+*/^!_)\]}]|\\(?:times|cdot|div)(?![A-Za-z]))")
_OPERATION = re.compile(r"[-+*/^!]|\\(?:times|cdot|div|frac|sqrt|binom)(?![A-Za-z])")


def math_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every math span's content, in one pass over the delimiters."""
    spans: list[tuple[int, int]] = []
    opener: str | None = None
    begin = 0
    for m in _DELIMITER.finditer(text):
        token = m.group()
        if token == "\\$":
            continue  # an escaped dollar is text
        if token.startswith("\\begin"):
            if opener is None:
                opener, begin = "\\end" + token[6:], m.end()
            continue
        if opener is None:
            if token in _CLOSER:
                opener, begin = token, m.end()
            continue
        closes = token == opener or token == _CLOSER.get(opener)
        if not closes:
            continue
        if opener == "$":
            content = text[begin : m.start()]
            digit_after = m.end() < len(text) and text[m.end()].isdigit()
            if digit_after or not content.strip() or _WORD.search(_COMMAND.sub(" ", content)):
                opener, begin = "$", m.end()  # a currency sign: this one may open the next span
                continue
        spans.append((begin, m.start()))
        opener = None
    return spans


def _value(side: str) -> Value | None:
    side = side.strip()
    if not side or len(side) > MAX_SIDE_CHARS or _LEADING_OPERATOR.match(side) or _AMBIGUOUS.search(side):
        return None
    if _LETTER.search(_COMMAND.sub("", side)):
        return None  # a variable, a named quantity, a unit
    try:
        node = parse_expr_latex(side)
        if free_variables(node):
            return None
        return evaluate(node, {})
    except (Unsupported, Undefined, ArithmeticError, ValueError, RecursionError):
        return None


def _operation(side: str) -> bool:
    """The side computes something (a leading sign alone is a number, not an operation)."""
    return _OPERATION.search(side.strip().lstrip("-+ ")) is not None


def _head(side: str) -> Value | None:
    """The value of the side's first term, when a top-level `+` or `-` follows it."""
    text = side.strip()
    depth = 0
    for i, c in enumerate(text):
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif c in "+-" and depth == 0 and i > 0 and text[:i].strip() and text[:i].rstrip()[-1] not in "^_+-*/":
            return _value(text[:i])
    return None


def _rows(content: str) -> list[str]:
    """The span's rows, a row that starts with `=` joined to the one before it."""
    rows: list[str] = []
    for row in _ROW.split(content):
        if rows and row.lstrip().startswith("="):
            rows[-1] += " " + row
        else:
            rows.append(row)
    return rows


def latex_equations(text: str) -> Iterator[Equation]:
    """Every equation between two plain-number sides inside the text's math spans, with an
    operation on one of them; positions are the span's."""
    for start, end in math_spans(text):
        content = _NAMED.sub(" q ", text[start:end])  # a named quantity or a unit: a letter
        content = _DROP.sub(" ", _THOUSANDS.sub("", content.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")))
        for row in _rows(content):
            for piece in _SEPARATOR.split(row):
                if "=" not in piece:
                    continue
                sides = split_top_level(piece, "=")
                values = [_value(s) for s in sides]
                for (a, va), (b, vb) in zip(zip(sides, values), zip(sides[1:], values[1:])):
                    if va is None or vb is None or not (_operation(a) or _operation(b)):
                        continue
                    yield Equation(va, vb, a.strip(), b.strip(), start, end, _head(b))

