"""The simulated policy: real text, planted errors, recovery, seeding, partial prefixes, latency."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from apsgen.config import SimulatedSpec
from apsgen.policy.base import Policy, Sampling
from apsgen.worlds.chain import SimulatedPolicy, first_error_offset, first_error_step, plan_for, simulated_problems

SPEC = SimulatedSpec(min_steps=4, max_steps=10, tokens_per_step=15)


def gen(policy: SimulatedPolicy, question: str, prefix: str = "", n: int = 16, seed: int | None = 1, **kw):  # type: ignore[no-untyped-def]
    return asyncio.run(policy.generate(question, prefix, n, Sampling(seed=seed, **kw)))


def test_problems_are_deterministic_and_within_the_step_range() -> None:
    a, b = simulated_problems(20, SPEC, seed=5), simulated_problems(20, SPEC, seed=5)
    assert a == b and a != simulated_problems(20, SPEC, seed=6)
    assert len({p.id for p in a}) == 20
    for p in a:
        plan = plan_for(p.question, SPEC)
        assert SPEC.min_steps <= plan.n_steps <= SPEC.max_steps
        assert p.answer == str(plan.values[-1])
        assert SPEC.error_rate[0] <= plan.error_rate <= SPEC.error_rate[1]


def test_success_rate_sets_the_per_step_error_rate() -> None:
    spec = SPEC.model_copy(update={"success_rate": (0.5, 0.9)})
    for p in simulated_problems(20, spec, seed=0):
        plan = plan_for(p.question, spec)
        assert 0.5 - 1e-9 <= (1 - plan.error_rate) ** plan.n_steps <= 0.9 + 1e-9


def test_completions_are_numbered_steps_with_a_boxed_answer() -> None:
    spec = SPEC.model_copy(update={"recover_rate": 0.0})
    p = simulated_problems(1, spec, seed=0)[0]
    policy = SimulatedPolicy(spec, seed=0)
    assert isinstance(policy, Policy)
    g = gen(policy, p.question)
    n = plan_for(p.question, spec).n_steps
    for s in g.samples:
        paras = s.text.split("\n\n")
        assert [int(re.match(r"Step (\d+):", x).group(1)) for x in paras] == list(range(1, n + 1))  # type: ignore[union-attr]
        assert re.search(r"\\boxed\{-?\d+\}\.$", s.text)
        assert s.n_tokens == policy.count_tokens(s.text) and not s.truncated
        boxed = re.findall(r"\\boxed\{(-?\d+)\}", s.text)[-1]
        assert (boxed == p.answer) == (first_error_step(p.question, s.text, spec) is None)
    assert g.prompt_tokens == policy.count_tokens(p.question)


def test_planted_errors_and_recovery() -> None:
    spec = SPEC.model_copy(update={"error_rate": (0.3, 0.3), "recover_rate": 0.5})
    p = simulated_problems(1, spec, seed=0)[0]
    g = gen(SimulatedPolicy(spec, seed=0), p.question, n=200)
    kinds = set()
    for s in g.samples:
        right = re.findall(r"\\boxed\{(-?\d+)\}", s.text)[-1] == p.answer
        kinds.add((first_error_step(p.question, s.text, spec) is not None, right))
    # clean and right, wrong after an error, and right despite an error (process wrong)
    assert kinds == {(False, True), (True, False), (True, True)}


def test_same_seed_same_text_and_unseeded_calls_vary() -> None:
    p = simulated_problems(1, SPEC, seed=0)[0]
    policy = SimulatedPolicy(SPEC, seed=0)
    assert gen(policy, p.question, seed=3) == gen(policy, p.question, seed=3)
    assert gen(policy, p.question, seed=3) != gen(policy, p.question, seed=4)
    assert gen(policy, p.question, seed=None) != gen(policy, p.question, seed=None)


def test_continues_any_prefix_cut_at_whitespace() -> None:
    spec = SPEC.model_copy(update={"error_rate": (0.0, 0.0)})
    p = simulated_problems(1, spec, seed=1)[0]
    policy = SimulatedPolicy(spec, seed=0)
    text = gen(policy, p.question, n=1).samples[0].text
    for m in re.finditer(r"\s+", text):
        prefix = text[: m.start()]
        full = prefix + gen(policy, p.question, prefix, n=1).samples[0].text
        assert full.count("Step ") == text.count("Step ") and full.endswith(f"\\boxed{{{p.answer}}}.")
        assert first_error_offset(p.question, full, spec) is None


def test_a_wrong_prefix_stays_wrong_without_recovery() -> None:
    spec = SPEC.model_copy(update={"error_rate": (0.0, 0.0), "recover_rate": 0.0})
    p = simulated_problems(1, spec, seed=1)[0]
    policy = SimulatedPolicy(spec, seed=0)
    text = gen(policy, p.question, n=1).samples[0].text
    bad = re.sub(r"= (-?\d+)\.", lambda m: f"= {int(m.group(1)) + 1}.", text, count=1)
    prefix = bad.split("\n\n")[0] + "\n\n"
    assert first_error_step(p.question, prefix, spec) == 1
    for s in gen(policy, p.question, prefix, n=8).samples:
        assert not (prefix + s.text).endswith(f"\\boxed{{{p.answer}}}.")


def test_truncation_unparseable_and_latency() -> None:
    spec = SPEC.model_copy(update={"unparseable_rate": 1.0, "latency_s": 0.05})
    p = simulated_problems(1, spec, seed=0)[0]
    policy = SimulatedPolicy(spec, seed=0)
    t0 = time.perf_counter()
    g = gen(policy, p.question, n=4)
    assert time.perf_counter() - t0 >= 0.05
    assert all("\\boxed" not in s.text for s in g.samples)
    short = gen(policy, p.question, n=2, max_tokens=5)
    assert all(s.truncated and s.n_tokens == 5 for s in short.samples)


def test_graded_by_the_real_verifier() -> None:
    verify = pytest.importorskip("apsgen.verify")
    spec = SPEC.model_copy(update={"error_rate": (0.2, 0.2), "recover_rate": 0.0})
    p = simulated_problems(1, spec, seed=0)[0]
    g = gen(SimulatedPolicy(spec, seed=0), p.question, n=16)

    with verify.Verifier() as v:
        verdicts = asyncio.run(v.acheck_batch([s.text for s in g.samples], p.answer, [s.truncated for s in g.samples]))
    for s, v in zip(g.samples, verdicts, strict=True):
        expected = "wrong" if first_error_step(p.question, s.text, spec) else "correct"
        assert str(getattr(v.outcome, "value", v.outcome)) == expected
