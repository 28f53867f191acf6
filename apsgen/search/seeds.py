"""Deterministic per-request seeds: the same (run seed, problem, state, call) always gives the same seed.

Seeds never depend on scheduling, so concurrent searches sharing one policy stay reproducible.
"""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, problem_id: str, key: str, counter: int) -> int:
    """A 63-bit seed from the run seed, the problem, a state key (e.g. the prefix) and a call counter."""
    h = hashlib.blake2b(digest_size=8)
    for part in (str(seed), problem_id, key, str(counter)):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")  # separator, so ("ab", "c") and ("a", "bc") differ
    return int.from_bytes(h.digest(), "big") >> 1
