"""Policy wrappers the benchmarks hand to a run (`run_job(policy_wrapper=...)`): a worker wraps its
policy with one, and `SearchWorker.stats()["policy"]` carries the wrapper's `report()` back."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from apsgen.policy.base import Generation, Policy, Sampling


class InstrumentedPolicy:
    """Counts the CPU time of the event loop's thread spent inside `generate` (exact for a policy
    that answers without suspending, like the simulated one) and, with `record`, keeps every request
    (question, prefix, n, sampling) so it can be replayed elsewhere."""

    def __init__(self, inner: Policy, record: bool = False):
        self.inner = inner
        self.record = record
        self.name = inner.name
        self.revision = inner.revision
        self.cpu_s = 0.0
        self.requests: list[dict[str, Any]] = []

    async def generate(self, question: str, prefix: str, n: int, sampling: Sampling) -> Generation:
        if self.record:
            self.requests.append({"question": question, "prefix": prefix, "n": n, "sampling": asdict(sampling)})
        t0 = time.thread_time()
        try:
            return await self.inner.generate(question, prefix, n, sampling)
        finally:
            self.cpu_s += time.thread_time() - t0

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def close(self) -> None:
        await self.inner.close()

    def report(self) -> dict[str, Any]:
        return {"cpu_s": self.cpu_s, "requests": list(self.requests)}

    def __getattr__(self, name: str) -> Any:  # start(), template_hash, ...
        return getattr(self.inner, name)


def counting(policy: Policy) -> InstrumentedPolicy:
    """Count the policy's CPU time (`bench overhead`)."""
    return InstrumentedPolicy(policy)


def recording(policy: Policy) -> InstrumentedPolicy:
    """Count and record every request (`bench engine` replays them on a bare engine)."""
    return InstrumentedPolicy(policy, record=True)
