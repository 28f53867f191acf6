"""Shared helpers for the search tests: a tiny stand-in verifier, a scripted policy, and a run of
the search over simulated problems.

The stand-in grades the last \\boxed{} exactly as a string, so search tests do not depend on the
real verifier's worker processes (the integration test uses that one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import asyncio

from apsgen.config import Labelling, SimulatedSpec
from apsgen.policy.base import Generation, Sample, Sampling
from apsgen.search import run_search
from apsgen.worlds.chain import SimulatedPolicy, simulated_problems


@dataclass(frozen=True)
class FakeCheck:
    outcome: str
    answer: str | None


class BoxedVerifier:
    def __init__(self) -> None:
        self.n_checked = 0

    async def acheck_batch(self, solutions: list[str], gold: str, truncated: list[bool]) -> list[FakeCheck]:
        out = []
        for text, trunc in zip(solutions, truncated, strict=True):
            self.n_checked += 1
            found = re.findall(r"\\boxed\{([^{}]*)\}", text)
            if trunc:
                out.append(FakeCheck("truncated", None))
            elif not found:
                out.append(FakeCheck("no_answer", None))
            else:
                out.append(FakeCheck("correct" if found[-1].strip() == gold else "wrong", found[-1]))
        return out


class ScriptedPolicy:
    """Continuations chosen by a function of (prefix, call seed, sample index); records every call."""

    name = "scripted"
    revision = None

    def __init__(self, continue_fn, truncated_fn=None) -> None:  # type: ignore[no-untyped-def]
        self.continue_fn = continue_fn
        self.truncated_fn = truncated_fn or (lambda prefix, i: False)
        self.calls: list[tuple[str, int]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def close(self) -> None:
        return None

    async def generate(self, question: str, prefix: str, n: int, sampling: Sampling) -> Generation:
        self.calls.append((prefix, n))
        texts = [self.continue_fn(prefix, i) for i in range(n)]
        samples = [Sample(t, self.count_tokens(t), self.truncated_fn(prefix, i)) for i, t in enumerate(texts)]
        return Generation(samples, prompt_tokens=len(prefix.split()))


EASY = SimulatedSpec(min_steps=4, max_steps=8, success_rate=(0.6, 0.9), recover_rate=0.0, tokens_per_step=12)


def search_all(spec: SimulatedSpec, search: Labelling, n: int = 8, seed: int = 0):  # type: ignore[no-untyped-def]
    problems = simulated_problems(n, spec, seed=3)
    policy = SimulatedPolicy(spec, seed=0)

    async def go():  # type: ignore[no-untyped-def]
        verifier = BoxedVerifier()
        return await asyncio.gather(*(run_search(p, policy, verifier, search, Sampling(), seed=seed) for p in problems))

    return problems, asyncio.run(go())
