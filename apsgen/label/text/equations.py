"""False equations in a step's text: what a step states between plain numbers that is not so.

Two readers, one per kind of text: LaTeX math spans (`latex`) and the running prose around them
(`prose`, which never sees inside a span the LaTeX reader read); one rule for when a stated
equation is false (`equation`). See `apsgen.label.text` for how the search uses it, and
`apsgen bench checks` for its precision on human labels.
"""

from __future__ import annotations

from collections.abc import Iterator

from apsgen.label.text.equation import Equation, is_false
from apsgen.label.text.latex import latex_equations, math_spans
from apsgen.label.text.prose import prose_equations, tokens

MAX_CHARS = 20_000  # a longer step (garbage, or no step breaks) is not read at all

__all__ = ["Equation", "MAX_CHARS", "false_equation", "false_equations", "tokens"]


def _outside_math(text: str) -> str:
    """The text with every math span's content blanked (same length, so positions hold)."""
    spans = math_spans(text)
    if not spans:
        return text
    parts, last = [], 0
    for start, end in spans:
        parts += [text[last:start], " " * (end - start)]
        last = end
    parts.append(text[last:])
    return "".join(parts)


def false_equations(text: str) -> Iterator[Equation]:
    """The false equations the step states (see `equation`): those in its math, then the prose's."""
    if len(text) > MAX_CHARS:
        return
    yield from (eq for eq in latex_equations(text) if is_false(eq, text))
    yield from (eq for eq in prose_equations(_outside_math(text)) if is_false(eq, text))


def false_equation(text: str) -> str | None:
    """The first false equation the step states, as written; else None."""
    found = next(false_equations(text), None)
    return found.render() if found is not None else None
