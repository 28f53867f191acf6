"""A small, bounded LaTeX expression parser for the in-process fast path (no sympy, no eval).

It covers what most final answers are made of: numbers, `+ - * /`, `\\frac`, powers, roots,
`\\pi`, `e`, `i`, single-letter variables, common functions, factorials and binomials of small
integers. Anything else raises `Unsupported` and the pair goes to the sympy pool instead. Every
construct is bounded (input length, nesting, exponent and factorial sizes), so parsing and
evaluation take microseconds and cannot hang the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_EXPR_CHARS = 300
MAX_DEPTH = 40

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?|\.\d+)|(?P<cmd>\\[a-zA-Z]+)|(?P<letter>[a-zA-Z])"
    r"|(?P<op>[-+*/^_(){}\[\]!|]))"
)
_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
    "vartheta", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "phi", "varphi",
    "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi",
    "Omega",
}
FUNCTIONS = {
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh",
    "tanh", "ln", "log", "exp",
}
_MULTIPLY = {"\\cdot", "\\times", "*"}
_DIVIDE = {"/", "\\div"}


class Unsupported(ValueError):
    """The text uses something this parser does not handle (the sympy pool will try)."""


# AST: plain tuples, cheap to build and to walk.
#   ("num", Fraction-able str) ("var", name) ("const", "pi"|"e"|"i")
#   ("add", a, b) ("sub", a, b) ("mul", a, b) ("div", a, b) ("neg", a) ("pow", a, b)
#   ("root", a, n-node) ("func", name, a) ("log", base-node, a) ("fact", a) ("binom", a, b)
Node = tuple


@dataclass
class _Token:
    kind: str
    text: str


def tokenize(text: str) -> list[_Token]:
    if len(text) > MAX_EXPR_CHARS:
        raise Unsupported("too long")
    tokens: list[_Token] = []
    pos = 0
    end = len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise Unsupported(f"unexpected character {text[pos]!r}")
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise Unsupported("unexpected end")
        self.pos += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise Unsupported(f"expected {text!r}, got {token.text!r}")

    def parse(self) -> Node:
        node = self.expression()
        if self.peek() is not None:
            raise Unsupported(f"trailing {self.peek().text!r}")  # type: ignore[union-attr]
        return node

    def expression(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Unsupported("nested too deep")
        node = self.term()
        while (token := self.peek()) is not None and token.text in ("+", "-"):
            self.take()
            node = ("add" if token.text == "+" else "sub", node, self.term())
        self.depth -= 1
        return node

    def term(self) -> Node:
        node = self.unary()
        while (token := self.peek()) is not None:
            if token.text in _MULTIPLY:
                self.take()
                node = ("mul", node, self.unary())
            elif token.text in _DIVIDE:
                self.take()
                node = ("div", node, self.unary())
            elif self._starts_atom(token):
                node = ("mul", node, self.postfix())
            else:
                break
        return node

    def _starts_atom(self, token: _Token) -> bool:
        if token.kind in ("num", "letter"):
            return True
        if token.kind == "cmd":
            return token.text not in _MULTIPLY and token.text not in _DIVIDE
        return token.text in ("(", "{", "[")

    def unary(self) -> Node:
        token = self.peek()
        if token is not None and token.text in ("-", "+"):
            self.take()
            operand = self.unary()
            return ("neg", operand) if token.text == "-" else operand
        return self.postfix()

    def postfix(self) -> Node:
        node = self.atom()
        while (token := self.peek()) is not None:
            if token.text == "^":
                self.take()
                node = ("pow", node, self.exponent())
            elif token.text == "!":
                self.take()
                node = ("fact", node)
            else:
                break
        return node

    def exponent(self) -> Node:
        token = self.peek()
        if token is not None and token.text in ("-", "+"):
            self.take()
            inner = self.exponent()
            return ("neg", inner) if token.text == "-" else inner
        return self.atom()

    def group(self) -> Node:
        self.expect("{")
        node = self.expression()
        self.expect("}")
        return node

    def atom(self) -> Node:
        token = self.take()
        if token.kind == "num":
            # `2\frac{1}{2}` is a mixed number in MATH (and for latex2sympy): 5/2, not 1.
            nxt = self.peek()
            if nxt is not None and nxt.text == "\\frac" and token.text.isdigit():
                save = self.pos
                self.take()
                num, den = self.group(), self.group()
                if num[0] == "num" and den[0] == "num" and num[1].isdigit() and den[1].isdigit():
                    return ("add", ("num", token.text), ("div", num, den))
                self.pos = save
            return ("num", token.text)
        if token.kind == "letter":
            name = token.text
            if name in ("e", "i"):
                return ("const", name)
            return ("var", name + self._subscript())
        if token.text in ("(", "["):
            node = self.expression()
            self.expect(")" if token.text == "(" else "]")
            return node
        if token.text == "{":
            node = self.expression()
            self.expect("}")
            return node
        if token.kind == "cmd":
            return self.command(token.text[1:])
        raise Unsupported(f"unexpected {token.text!r}")

    def _subscript(self) -> str:
        token = self.peek()
        if token is None or token.text != "_":
            return ""
        self.take()
        sub = self.take()
        if sub.text == "{":
            parts = []
            while (t := self.take()).text != "}":
                if t.kind not in ("num", "letter"):
                    raise Unsupported("complex subscript")
                parts.append(t.text)
            return "_" + "".join(parts)
        if sub.kind in ("num", "letter"):
            return "_" + sub.text
        raise Unsupported("complex subscript")

    def command(self, name: str) -> Node:
        if name == "frac":
            return ("div", self.group(), self.group())
        if name == "sqrt":
            index: Node = ("num", "2")
            token = self.peek()
            if token is not None and token.text == "[":
                self.take()
                index = self.expression()
                self.expect("]")
            return ("root", self.atom(), index)
        if name == "pi":
            return ("const", "pi")
        if name in _GREEK:
            return ("var", "\\" + name + self._subscript())
        if name in ("binom", "dbinom", "tbinom"):
            return ("binom", self.group(), self.group())
        if name in FUNCTIONS:
            if name == "log" and (t := self.peek()) is not None and t.text == "_":
                self.take()
                base = self.atom()
                return ("log", base, self.postfix())
            token = self.peek()
            if token is not None and token.text == "^":
                raise Unsupported("powers of functions")  # \sin^2 x: leave to sympy
            return ("func", name, self.postfix())
        raise Unsupported(f"command \\{name}")


def parse_expr_latex(text: str) -> Node:
    """The AST of a normalised scalar answer; raises Unsupported when out of scope."""
    return _Parser(tokenize(text)).parse()


def free_variables(node: Node) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if item[0] == "var":
            found.add(item[1])
        else:
            stack.extend(child for child in item[1:] if isinstance(child, tuple))
    return found

