"""Cheap in-process comparison of two normalised answers; None means "ask the symbolic check".

Everything here is pure Python over short strings and runs on the caller's thread, so it must
stay bounded: no sympy, no unbounded arithmetic.
"""

from __future__ import annotations

import re

from apsgen.verify.numeric import parse_rational

_WORD = re.compile(r"[A-Za-z][A-Za-z ]*")


def compare_cheap(gold: str, pred: str) -> bool | None:
    """True/False when the normalised pair can be decided without sympy, else None."""
    if gold == pred:
        return True
    if not pred:
        return False
    gold_value = parse_rational(gold)
    pred_value = parse_rational(pred)
    if gold_value is not None and pred_value is not None:
        return gold_value == pred_value
    gold_word = _WORD.fullmatch(gold) is not None and len(gold) > 1
    pred_word = _WORD.fullmatch(pred) is not None and len(pred) > 1
    if gold_word and pred_word:
        return gold.casefold() == pred.casefold()
    if (gold_word and pred_value is not None) or (pred_word and gold_value is not None):
        return False
    return None
