"""Policy backends behind one async `generate(question, prefix, n, sampling)` interface."""

from apsgen.policy.base import Generation, Policy, Sample, Sampling

__all__ = ["Generation", "Policy", "Sample", "Sampling"]
