"""Building the policy a job names. Backends are imported only when chosen."""

from __future__ import annotations

from apsgen.config import PolicySpec
from apsgen.policy.base import Policy


def make_policy(spec: PolicySpec, *, seed: int = 0, verbose: bool = False) -> Policy:
    if spec.backend == "vllm":
        from apsgen.policy.vllm_engine import VLLMPolicy

        return VLLMPolicy(spec, verbose=verbose)
    if spec.backend == "simulated":
        from apsgen.worlds.chain import SimulatedPolicy  # a simulated world, for tests and trying the pipeline

        return SimulatedPolicy(spec.simulated, seed=seed)
    if spec.backend == "openai":
        from apsgen.policy.openai_server import OpenAIPolicy

        return OpenAIPolicy(spec)
    raise ValueError(f"unknown policy backend {spec.backend!r}")
