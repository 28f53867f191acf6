"""The one interface every policy backend implements: sample n completions of a solution prefix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Sampling:
    """Per-request sampling settings; `seed` makes a request reproducible."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 1024
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Sample:
    """One completion. `text` continues the prefix (it does not repeat it)."""

    text: str
    n_tokens: int
    truncated: bool  # stopped by max_tokens rather than by the model


@dataclass(frozen=True)
class Generation:
    """The n samples of one request and what the request cost."""

    samples: list[Sample]
    prompt_tokens: int

    @property
    def generated_tokens(self) -> int:
        return sum(s.n_tokens for s in self.samples)


@runtime_checkable
class Policy(Protocol):
    """A policy model. `prefix` is the start of the solution, appended verbatim to the assistant turn."""

    name: str
    revision: str | None

    async def generate(self, question: str, prefix: str, n: int, sampling: Sampling) -> Generation: ...

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` (used for the paper's token-based step split and rollout lengths)."""
        ...

    async def close(self) -> None: ...
