"""An LLM judge for the consensus filter: a second model reads each labelled path and names its
first wrong step; a path is kept by `apsgen export --consensus` only when the judge agrees with
the step the Monte Carlo search located (Zhang et al. 2025, "The Lessons of Developing Process
Reward Models", arXiv 2501.07301, keep MC labels only where a judge agrees).

`make_judge` builds one from the job's `judge:` section: a model on the vLLM engine inside the
search worker (the policy's own engine when it is the same model), a model behind an
OpenAI-compatible server, or the simulated judge (planted truth, configurable accuracy) for tests
and `apsgen bench search`. `apsgen.judge.consensus` applies it to a search result.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any, Protocol

from apsgen.config import JudgeSpec, PolicySpec, PromptSpec, SimulatedJudgeSpec
from apsgen.judge.prompt import parse_first_error, render_request
from apsgen.policy.base import Sampling


@dataclass(frozen=True)
class JudgeReply:
    first_error: int | None  # 0-based step index, -1: no wrong step, None: no verdict in the reply
    text: str


class Judge(Protocol):
    name: str

    async def first_error(self, question: str, steps: list[str]) -> JudgeReply: ...

    async def close(self) -> None: ...


def _seed(seed: int, question: str, steps: list[str]) -> int:
    h = hashlib.blake2b(digest_size=8)
    for part in (str(seed), question, *steps):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return int.from_bytes(h.digest(), "big") >> 1


class PolicyJudge:
    """A judge model behind a policy backend (`generate_text` on a rendered prompt). Its prompt is
    rendered with the model's own chat template and the judge's system instruction."""

    def __init__(self, spec: JudgeSpec, policy: Any, *, owns_policy: bool, seed: int = 0) -> None:
        self.spec = spec
        self.policy = policy
        self.owns_policy = owns_policy
        self.seed = seed
        self.name = f"{spec.backend}:{getattr(policy, 'name', spec.model)}"
        self._prompts: Any = None

    async def _builder(self) -> Any:
        if self._prompts is None:
            from apsgen.policy.prompt import PromptBuilder

            if getattr(self.policy, "prompts", None) is None:
                await self.policy.start()
            tokenizer = self.policy.prompts.tokenizer
            self._prompts = PromptBuilder(PromptSpec(system=self.spec.system), tokenizer)
        return self._prompts

    async def first_error(self, question: str, steps: list[str]) -> JudgeReply:
        builder = await self._builder()
        prompt = builder.render(render_request(self.spec.template, question, steps), "")
        sampling = Sampling(
            temperature=self.spec.temperature, max_tokens=self.spec.max_tokens, seed=_seed(self.seed, question, steps)
        )
        gen = await self.policy.generate_text(prompt, 1, sampling)
        text = gen.samples[0].text if gen.samples else ""
        return JudgeReply(parse_first_error(text, len(steps)), text)

    async def close(self) -> None:
        if self.owns_policy:
            await self.policy.close()


class SimulatedJudge:
    """Knows the simulated policy's planted truth and tells it with probability `accuracy`;
    otherwise names another step (or none). Its reply goes through the same parser as a model's."""

    name = "simulated"

    def __init__(self, spec: SimulatedJudgeSpec, seed: int = 0, policy_spec: Any = None) -> None:
        self.spec = spec
        self.seed = seed
        self.policy_spec = policy_spec  # the simulated policy's (its planted truth); None: defaults

    def truth(self, question: str, steps: list[str]) -> int:
        from apsgen.worlds import chain, reasoning, story

        text = "\n\n".join(s.strip() for s in steps)
        world = (story if isinstance(self.policy_spec, story.StoryWorldSpec)
                 else reasoning if isinstance(self.policy_spec, reasoning.ReasoningWorldSpec) else chain)
        off = world.first_error_offset(question, text, self.policy_spec)
        if off is None:
            return -1
        end = 0
        for i, s in enumerate(steps):
            end += len(s.strip()) + 2
            if off < end:
                return i
        return len(steps) - 1

    async def first_error(self, question: str, steps: list[str]) -> JudgeReply:
        rng = random.Random(_seed(self.seed, question, steps))
        truth = self.truth(question, steps)
        if rng.random() < self.spec.unparseable_rate:
            text = "Let me look at each step again. I am not sure which one is wrong."
            return JudgeReply(parse_first_error(text, len(steps)), text)
        answer = truth
        if rng.random() >= self.spec.accuracy:
            others = [i for i in [-1, *range(len(steps))] if i != truth]
            answer = rng.choice(others) if others else truth
        text = "Checking the steps in order. " + (
            "Every step is correct: \\boxed{none}" if answer == -1 else f"The first wrong step is \\boxed{{{answer + 1}}}."
        )
        return JudgeReply(parse_first_error(text, len(steps)), text)

    async def close(self) -> None:
        return None


def make_judge(spec: JudgeSpec, policy_spec: PolicySpec, *, policy: Any = None, seed: int = 0) -> Judge:
    """The judge a job names. `policy` is the worker's own policy: a vLLM judge of the same model
    runs on its engine instead of loading a second copy."""
    if spec.backend == "simulated":
        return SimulatedJudge(spec.simulated, seed=seed, policy_spec=policy_spec.simulated)
    model = spec.model or policy_spec.model
    same_model = model == policy_spec.model and (spec.revision or policy_spec.revision) == policy_spec.revision
    if (
        policy is not None
        and spec.backend == policy_spec.backend
        and same_model
        and hasattr(policy, "generate_text")
        and (spec.backend == "vllm" or spec.openai == policy_spec.openai)
    ):
        return PolicyJudge(spec, policy, owns_policy=False, seed=seed)
    from apsgen.policy.factory import make_policy

    judge_policy = make_policy(
        PolicySpec(
            backend=spec.backend,
            model=model,
            revision=spec.revision,
            prompt=PromptSpec(system=spec.system),
            engine=spec.engine,
            openai=spec.openai,
        ),
        seed=seed,
    )
    return PolicyJudge(spec, judge_policy, owns_policy=True, seed=seed)


__all__ = ["Judge", "JudgeReply", "PolicyJudge", "SimulatedJudge", "make_judge"]
