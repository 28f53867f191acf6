"""run_search end to end on the simulated policy: labels, skips, determinism, budgets, the DAG."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from search_support import EASY, BoxedVerifier, ScriptedPolicy, search_all

from apsgen.config import Labelling, SimulatedSpec
from apsgen.policy.base import Sampling
from apsgen.problem import Problem
from apsgen.search import run_search
from apsgen.worlds.chain import SimulatedPolicy, score_first_errors, simulated_problems



def located_accuracy(problems, results, spec: SimulatedSpec) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    return score_first_errors(problems, results, spec)


@pytest.mark.parametrize("mode", ["omegaprm", "per_step_mc"])
@pytest.mark.parametrize("step_mode", ["delimiter", "tokens"])
def test_planted_first_errors_are_found_on_easy_settings(mode: str, step_mode: str) -> None:
    search = Labelling.of(mode=mode, step_mode=step_mode, max_searches=10, screen_samples=16)
    problems, results = search_all(EASY, search)
    located, right = located_accuracy(problems, results, EASY)
    assert located >= 10
    assert right == located
    searched = [r for r in results if r.status == "searched"]
    assert searched and all(r.mode == mode and r.step_mode == step_mode for r in searched)
    if step_mode == "tokens":
        assert all(r.chunk_tokens for r in searched)


def test_labels_carry_offsets_counts_and_parents() -> None:
    _, results = search_all(EASY, Labelling.of(max_searches=5, screen_samples=16), n=4)
    r = next(r for r in results if r.status == "searched")
    assert r.root_mc_source == "screening" and r.root_n_rollouts == 16
    ids = {s.node_id for s in r.steps}
    assert len(ids) == len(r.steps)
    for s in r.steps:
        full = s.prefix + s.step_text
        assert full[s.char_start : s.char_end] == s.step_text and s.char_start == len(s.prefix)
        if s.label_source == "rollouts":
            # At least k rollouts, at most k_max, and the value is their success rate.
            assert 8 <= s.n_rollouts <= 32 and s.mc_value == s.n_correct / s.n_rollouts
            assert s.verdict in ("correct", "wrong", "undecided")
        if s.parent_id is None:
            assert s.parent_mc == r.root_mc
    assert r.n_policy_calls >= 1 and r.generated_tokens > 0 and r.prompt_tokens > 0
    assert sum(r.outcomes.values()) == r.n_rollouts


def test_same_seed_same_labels_even_when_run_concurrently() -> None:
    search = Labelling.of(max_searches=8, screen_samples=16)
    _, a = search_all(EASY, search, n=6, seed=1)
    _, b = search_all(EASY, search, n=6, seed=1)
    _, c = search_all(EASY, search, n=6, seed=2)

    def labels(rs):  # type: ignore[no-untyped-def]
        return [[(s.prefix, s.step_text, s.mc_value, s.is_first_error) for s in r.steps] for r in rs]

    assert labels(a) == labels(b)
    assert labels(a) != labels(c)


def test_skipped_questions_say_why() -> None:
    problems = simulated_problems(3, EASY, seed=0)

    def reasons(spec: SimulatedSpec) -> set[str | None]:
        policy = SimulatedPolicy(spec, seed=0)
        rs = [asyncio.run(run_search(p, policy, BoxedVerifier(), Labelling.of(screen_samples=8), Sampling(), seed=0)) for p in problems]
        assert all(r.status == "skipped" and r.steps == [] and r.n_policy_calls == 1 for r in rs)
        return {r.skip_reason for r in rs}

    assert reasons(EASY.model_copy(update={"success_rate": None, "error_rate": (0.0, 0.0)})) == {"all_correct"}
    assert reasons(EASY.model_copy(update={"success_rate": None, "error_rate": (1.0, 1.0)})) == {"all_wrong"}
    assert reasons(EASY.model_copy(update={"unparseable_rate": 1.0})) == {"no_answers"}


def test_root_estimated_fresh_when_asked() -> None:
    # Without refills (which add k fresh rollouts each, tested below) the root holds exactly its k.
    search = Labelling.of(max_searches=3, screen_samples=16, root_from_screening=False, refill_pool=False)
    _, results = search_all(EASY, search, n=4)
    searched = [r for r in results if r.status == "searched"]
    assert searched and all(r.root_mc_source == "fresh" and r.root_n_rollouts == 8 for r in searched)


def test_stops_at_the_search_limit_and_the_rollout_budget() -> None:
    _, results = search_all(EASY, Labelling.of(max_searches=2, screen_samples=16), n=4)
    assert all(r.n_searches <= 2 for r in results)
    assert any(r.stop_reason == "max_searches" for r in results)
    _, results = search_all(EASY, Labelling.of(rollout_budget=40, screen_samples=16), n=4)
    searched = [r for r in results if r.status == "searched"]
    assert all(r.n_rollouts <= 40 for r in results)
    assert searched and all(r.stop_reason in ("rollout_budget", "empty_pool") for r in searched)


def test_identical_prefixes_are_estimated_once() -> None:
    # Every solution is the same text, so all searches walk the same prefixes.
    def cont(prefix: str, i: int) -> str:
        if prefix == "":
            return "A.\n\nB.\n\nC. \\boxed{1}" if i % 2 else "A.\n\nB.\n\nC. \\boxed{2}"
        return " \\boxed{1}" if prefix.count("\n\n") < 2 else " \\boxed{2}"

    policy = ScriptedPolicy(cont)
    search = Labelling.of(screen_samples=8, refill_pool=False, skip_located=False)
    r = asyncio.run(run_search(Problem("p", "q", "1"), policy, BoxedVerifier(), search, Sampling(), seed=0))
    prefixes = Counter(p for p, _ in policy.calls)
    assert prefixes and max(prefixes.values()) == 1
    assert r.n_searches == 4 and r.n_first_errors == 1

    # By default a wrong solution through a first error already located is not searched again, and a
    # dry pool is refilled from the question once: the refill found nothing new, so the search ends.
    policy = ScriptedPolicy(cont)
    r = asyncio.run(run_search(Problem("p", "q", "1"), policy, BoxedVerifier(), Labelling.of(screen_samples=8), Sampling(), seed=0))
    assert r.n_searches == 1 and r.n_first_errors == 1 and r.stop_reason == "empty_pool"
    assert [n for p, n in policy.calls if p == ""] == [8, 8]


def test_a_dry_pool_is_refilled_from_the_question_until_a_draw_adds_nothing() -> None:
    # Each draw at the root: one right solution and wrong ones, each wrong at a step of its own
    # ("X<draw><i>"); from the third draw on, every solution is right.
    draws = {"n": 0}

    def cont(prefix: str, i: int) -> str:
        if prefix == "":
            draws["n"] += i == 0
            if draws["n"] >= 3 or i == 0:
                return "A.\n\nB.\n\nC. \\boxed{1}"
            return f"A.\n\nX{draws['n']}{i}.\n\nC. \\boxed{{2}}"
        return " \\boxed{2}" if "X" in prefix else " \\boxed{1}"

    def run(**kw) -> tuple:  # type: ignore[no-untyped-def,type-arg]
        draws["n"] = 0
        policy = ScriptedPolicy(cont)
        search = Labelling.of(screen_samples=8, step_checks=False, **kw)
        return asyncio.run(run_search(Problem("p", "q", "1"), policy, BoxedVerifier(), search, Sampling(), seed=0)), policy

    dry, _ = run(refill_pool=False)
    assert dry.n_first_errors == 7 and dry.stop_reason == "empty_pool"
    refilled, policy = run()
    # The second draw's 7 wrong solutions are searched too; the third adds nothing, and the search ends.
    assert refilled.n_first_errors == 14 and refilled.stop_reason == "empty_pool"
    assert [n for p, n in policy.calls if p == ""] == [8, 8, 8]
    assert refilled.root_n_rollouts == 8 + 8 + 8  # the refills are part of the root's MC


def test_a_question_shows_its_own_recovery_before_its_search() -> None:
    # Two screening solutions state a false equation with steps after it; from either, half the
    # completions still end right, silently. So do completions after "X.", a wrong step no text
    # check can see: MC alone takes that prefix for correct and locates the error at the last step.
    solutions = ["A.\n\n2 + 2 = 5.\n\nB.\n\nC.\n\n\\boxed{1}", "A.\n\n3 + 3 = 7.\n\nB.\n\nC.\n\n\\boxed{2}",
                 "A.\n\nB.\n\nC.\n\n\\boxed{1}", "A.\n\nX.\n\nC.\n\n\\boxed{2}"]

    def cont(prefix: str, i: int) -> str:
        if prefix == "":
            return solutions[i % 4]
        if "=" in prefix or "X" in prefix:
            return "B.\n\n\\boxed{1}" if i % 2 else "B.\n\n\\boxed{2}"
        return "C.\n\n\\boxed{1}"

    def run(probes: int):  # type: ignore[no-untyped-def]
        policy = ScriptedPolicy(cont)
        search = Labelling.of(screen_samples=8, own_recovery_probes=probes)
        r = asyncio.run(run_search(Problem("p", "q", "1"), policy, BoxedVerifier(), search, Sampling(), seed=0))
        return r, policy.calls

    def after_x(r) -> list:  # type: ignore[no-untyped-def,type-arg]
        return [s for s in r.steps if s.is_first_error and s.prefix.startswith("A.\n\nX.")]

    blind, calls = run(0)
    assert after_x(blind)  # passed over the wrong step
    assert not any("=" in p for p, _ in calls)
    assert "own_recovery" not in json.loads(blind.label_rule)

    seen, calls = run(4)
    # The probes come first, one request of k at each distinct wrong prefix, and are stored.
    assert calls[1:3] == [("A.\n\n2 + 2 = 5.\n\n", 8), ("A.\n\n3 + 3 = 7.\n\n", 8)]
    probed = [s for s in seen.steps if s.step_text.startswith(("2 + 2", "3 + 3"))]
    assert [(s.verdict, s.verdict_basis, s.n_correct, s.n_rollouts) for s in probed] == [("wrong", "arithmetic", 4, 8)] * 2
    assert json.loads(seen.label_rule)["own_recovery"] == {"probes": 2, "successes": 8, "graded": 16}
    # Wrong prefixes here do as well as correct ones: rollouts cannot tell them apart, so the
    # question is not searched at all rather than pass over "X." (and pays for nothing more).
    assert not after_x(seen)
    assert seen.stop_reason == "undecidable" and seen.n_searches == 0 and [n for p, n in calls if p == ""] == [8]


def _planted_world(recovers: bool):  # type: ignore[no-untyped-def]
    """Screening: right solutions whose first step computes, wrong ones through "X." (no text check
    sees it). From the step made wrong on purpose (any equation but the right one) the policy ends
    right half the time (`recovers`) or never."""
    solutions = ["S 2 + 3 = 5.\n\nB.\n\nC.\n\n\\boxed{1}", "S 2 + 3 = 5.\n\nX.\n\nC.\n\n\\boxed{2}",
                 "T 1 + 4 = 5.\n\nB.\n\nC.\n\n\\boxed{1}", "T 1 + 4 = 5.\n\nX.\n\nC.\n\n\\boxed{2}"]

    def cont(prefix: str, i: int) -> str:
        if prefix == "":
            return solutions[i % 4]
        if "=" in prefix and "= 5." not in prefix:  # the planted prefix
            return "B.\n\nC.\n\n\\boxed{1}" if recovers and i % 2 else "B.\n\nC.\n\n\\boxed{2}"
        return "C.\n\n\\boxed{2}" if "X" in prefix else "B.\n\nC.\n\n\\boxed{1}"

    return ScriptedPolicy(cont)


def test_where_the_text_shows_no_error_the_question_measures_its_recovery_on_a_planted_one() -> None:
    for recovers in (True, False):
        policy = _planted_world(recovers)
        search = Labelling.of(screen_samples=8, max_searches=4)
        r = asyncio.run(run_search(Problem("p", "q", "1"), policy, BoxedVerifier(), search, Sampling(), seed=0))
        probes = r.own_recovery.probes if r.own_recovery else ()
        # One probe per right solution, at its computing step made wrong: a misread operand, the
        # equation kept true; k fresh rollouts there, and no row (the policy never wrote it).
        assert [(p.because, p.graded) for p in probes] == [("planted", 8)] * 2
        for probe in probes:
            assert "= 5." not in probe.planted and " + " in probe.planted
            assert any(prefix.startswith(probe.planted) for prefix, _ in policy.calls)
            assert not any(probe.planted in s.prefix + s.step_text for s in r.steps)
            assert probe.successes == (4 if recovers else 0)
        # Where a planted error ends right half the time, a right answer is too likely to have come
        # through a wrong step: none is stored as an all-good path; where it never does, they are.
        all_good = [s for s in r.steps if s.label_source == "correct_solution"]
        assert r.allgood is not None and (r.allgood["risk"] > 0.05) is recovers
        assert bool(all_good) is not recovers


def test_where_a_right_answer_is_likely_lucky_each_is_verified_before_it_is_stored() -> None:
    # A policy that recovers from a planted error one time in eight: a right answer may well have come
    # through a wrong step. "X." is one, and "R." recovers from it silently (every prefix through "R."
    # is as good as a correct one, so only the prefixes before it show the error); "B." is no error.
    solutions = ["S 2 + 3 = 5.\n\nB.\n\nC.\n\n\\boxed{1}", "S 2 + 3 = 5.\n\nX.\n\nR.\n\nC.\n\n\\boxed{1}",
                 "T 1 + 4 = 5.\n\nB.\n\nC.\n\n\\boxed{1}", "T 1 + 4 = 5.\n\nX.\n\nC.\n\n\\boxed{2}"]

    def cont(prefix: str, i: int) -> str:
        if prefix == "":
            return solutions[i % 4]
        if "=" in prefix and "= 5." not in prefix:  # a planted prefix
            return "B.\n\nC.\n\n\\boxed{1}" if i % 8 == 0 else "B.\n\nC.\n\n\\boxed{2}"
        if "R." in prefix:
            return "C.\n\n\\boxed{1}"
        if "X." in prefix:
            return "R.\n\nC.\n\n\\boxed{1}" if i % 8 == 0 else "C.\n\n\\boxed{2}"
        return "B.\n\nC.\n\n\\boxed{1}"

    search = Labelling.of(screen_samples=8, max_searches=4)
    r = asyncio.run(run_search(Problem("p", "q", "1"), ScriptedPolicy(cont), BoxedVerifier(), search, Sampling(), seed=0))
    assert r.stop_reason != "undecidable" and r.allgood is not None and r.allgood["risk"] > 0.05
    stored = [s for s in r.steps if s.label_source == "correct_solution"]
    # The right answers through "B." are stored, each after every prefix before its last step was
    # decided correct on rollouts; the one through "X." and "R." is not, and its hidden error is
    # located at "X.", though the prefix before its last step is as good as a correct one.
    assert stored and all("X." not in s.prefix for s in stored)
    by_id = {s.node_id: s for s in r.steps}
    assert all(by_id[s.parent_id].verdict == "correct" and by_id[s.parent_id].verdict_basis == "rollouts" for s in stored)
    assert r.allgood["verified"] == len(stored) and r.allgood["hidden_errors"] >= 1
    assert any(s.is_first_error and s.step_text.startswith("X.") and s.prefix.startswith("S") for s in r.steps)

    # Without verification (label.verify_right_answers: false) such a question stores no all-good path.
    off = Labelling.model_validate({"search": {"screen_samples": 8, "max_searches": 4},
                                    "label": {"rule": "sequential", "verify_right_answers": False}})
    r = asyncio.run(run_search(Problem("p", "q", "1"), ScriptedPolicy(cont), BoxedVerifier(), off, Sampling(), seed=0))
    assert not [s for s in r.steps if s.label_source == "correct_solution"] and "verified" not in (r.allgood or {})


def test_invalid_rollouts_wrong_or_excluded() -> None:
    # From a prefix: 4 right, 2 truncated-looking (no answer), 2 wrong.
    def cont(prefix: str, i: int) -> str:
        if prefix == "":
            return "A.\n\nB. \\boxed{1}" if i % 2 else "A.\n\nB. \\boxed{2}"
        return [" \\boxed{1}", " \\boxed{1}", " \\boxed{1}", " \\boxed{1}", " no answer", " no answer", " \\boxed{2}", " \\boxed{2}"][i]

    def first_label(invalid: str):  # type: ignore[no-untyped-def]
        r = asyncio.run(
            run_search(Problem("p", "q", "1"), ScriptedPolicy(cont), BoxedVerifier(), Labelling.of(screen_samples=8, invalid_rollouts=invalid), Sampling(), seed=0)
        )
        return next(s for s in r.steps if s.label_source == "rollouts")

    wrong, excluded = first_label("wrong"), first_label("exclude")
    assert (wrong.n_correct, wrong.n_rollouts, wrong.n_unparseable) == (4, 8, 2)
    assert wrong.mc_value == 0.5 and excluded.mc_value == pytest.approx(4 / 6)


def test_per_step_mc_labels_every_step_of_wrong_solutions() -> None:
    _, results = search_all(EASY, Labelling.of(mode="per_step_mc", screen_samples=16), n=4)
    r = next(r for r in results if r.status == "searched")
    assert r.n_searches == 16 - r.screen_correct  # every wrong screening solution
    assert r.n_first_errors >= 1
    # states after a located first error are stored (the whole tree) but never estimated
    assert {s.label_source for s in r.steps} <= {"rollouts", "wrong_solution", "unestimated"}
    assert all(s.mc_value is None for s in r.steps if s.label_source == "unestimated")


def test_label_rules_under_recovery() -> None:
    # Recovery makes some wrong prefixes look right (MC = 1/8): the paper's rule then labels errors
    # too late and searches rollouts of states that were already wrong. The threshold guard and the
    # sequential rule (the default) both fix that; the sequential one without a hand-set threshold.
    # Rollouts alone: the simulated wrong steps state false equations, which step checks would
    # settle for every rule.
    spec = EASY.model_copy(update={"recover_rate": 0.1})
    precision = {}
    for rule, extra in (("paper", {}), ("threshold", {"mc_threshold": 0.125, "pool_min_mc": 0.375}), ("sequential", {})):
        search = Labelling.of(label_rule=rule, max_searches=30, screen_samples=16, step_checks=False, **extra)
        problems, results = search_all(spec, search, n=8)
        located, right = located_accuracy(problems, results, spec)
        assert located >= 20, rule
        precision[rule] = right / located
    assert precision["threshold"] > precision["paper"]
    assert precision["sequential"] > precision["paper"] and precision["sequential"] >= 0.9
