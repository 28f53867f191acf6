"""What every simulated world's policy shares: the `Policy` interface over a world's plans.

A world parses everything it needs from (question, prefix): its hidden plan for the question (the
reference values, its error and recovery rates) and the state a prefix leaves it in, so any process
can serve any problem. Each request's samples are seeded by (world seed, request seed, question,
prefix), so a seed fixes every sample.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, Generic, TypeVar

from apsgen.policy.base import Generation, Sample, Sampling

Plan = TypeVar("Plan")


def within_budget(text: str, max_tokens: int) -> Sample:
    """A completion of `text`, cut after `max_tokens` words (a token is a word) and then truncated."""
    words = text.split(" ")
    truncated = len(words) > max_tokens
    out = " ".join(words[:max_tokens]) if truncated else text
    return Sample(out, len(out.split()), truncated)


class WorldPolicy(Generic[Plan]):
    """Implements `Policy`; a token is a whitespace-separated word. Subclasses give `plan_for`
    (question -> plan) and `_sample` (one continuation of a prefix)."""

    name = "world"
    revision: str | None = None

    def __init__(self, spec: Any, seed: int = 0) -> None:
        self.spec = spec
        self.seed = seed
        self._plans: dict[str, Plan] = {}
        self._unseeded_calls = 0
        self.n_calls = 0

    def plan_for(self, question: str) -> Plan:
        raise NotImplementedError

    def _sample(self, plan: Plan, prefix: str, rng: random.Random, max_tokens: int) -> Sample:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def close(self) -> None:
        return None

    def plan(self, question: str) -> Plan:
        plan = self._plans.get(question)
        if plan is None:
            plan = self._plans[question] = self.plan_for(question)
        return plan

    async def generate(self, question: str, prefix: str, n: int, sampling: Sampling) -> Generation:
        self.n_calls += 1
        latency = getattr(self.spec, "latency_s", 0.0)
        await asyncio.sleep(latency if latency > 0 else 0)
        plan = self.plan(question)
        if sampling.seed is None:
            self._unseeded_calls += 1
            key: object = ("unseeded", self._unseeded_calls)
        else:
            key = sampling.seed
        rng = random.Random(f"{self.seed}\x1f{key}\x1f{question}\x1f{prefix}")
        samples = [self._sample(plan, prefix, rng, sampling.max_tokens) for _ in range(n)]
        return Generation(samples, prompt_tokens=self.count_tokens(question) + self.count_tokens(prefix))
