"""Calibration: a seeded sample by problem id, a recovery distribution fitted from fresh probes,
and labels that do not depend on the order of the questions. Also the second simulated world."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from search_support import BoxedVerifier

from apsgen.config import CalibrationSpec, Labelling
from apsgen.label.calibration import PARAMS, Calibration, calibration_sample, fit_calibration
from apsgen.label.probes import LocatedProbe, OwnRecovery, Probe
from apsgen.pipeline import Labeller, label_locally
from apsgen.policy.base import Sampling
from apsgen.problem import Problem
from apsgen.worlds import story

MIN_QUESTIONS = PARAMS.min_questions


def _probe(c: int, n: int, ref: float) -> Probe:
    return Probe(c, n, ref)


def _probes(rates: list[float], n: int = 32, per_q: int = 3, seed: int = 0, relative: bool = False):
    """Per question, `per_q` probes of n rollouts at prefixes of random reference, at its rate."""
    rng = random.Random(seed)
    out = []
    for r in rates:
        qs = []
        for _ in range(per_q):
            ref = 0.3 + 0.6 * rng.random()
            p = r * ref if relative else r
            qs.append(_probe(sum(rng.random() < p for _ in range(n)), n, ref))
        out.append(qs)
    return out


def test_the_sample_is_drawn_by_problem_id_whatever_the_order() -> None:
    problems = [Problem(f"p{i}", f"q{i}", "1") for i in range(100)]
    a = calibration_sample(problems, 16, seed=3)
    b = calibration_sample(list(reversed(problems)), 16, seed=3)
    c = calibration_sample(sorted(problems, key=lambda p: p.question[-1]), 16, seed=3)
    assert {p.id for p in a} == {p.id for p in b} == {p.id for p in c}
    assert {p.id for p in a} != {p.id for p in calibration_sample(problems, 16, seed=4)}
    assert {p.id for p in a} != {p.id for p in problems[:16]}  # not the first ones


def test_a_common_recovery_rate_is_measured_and_read_as_narrow() -> None:
    cal = fit_calibration(_probes([0.1] * 24), CalibrationSpec())
    assert cal.source == "calibrated" and cal.recovery_model == "absolute"
    assert 0.07 < cal.recovery_mean < 0.13
    assert cal.recovery_concentration > 40  # the questions agree


def test_recovery_that_differs_between_questions_is_read_as_wide() -> None:
    rates = [0.0] * 16 + [0.4] * 4 + [0.05] * 4  # most never recover, a few often
    cal = fit_calibration(_probes(rates), CalibrationSpec())
    assert cal.source == "calibrated"
    assert cal.recovery_concentration < 10
    narrow = fit_calibration(_probes([0.08] * 24), CalibrationSpec())
    assert cal.recovery_concentration < narrow.recovery_concentration


def test_recovery_proportional_to_the_reference_is_read_as_relative() -> None:
    cal = fit_calibration(_probes([0.2] * 24, relative=True, per_q=6), CalibrationSpec())
    assert cal.recovery_model == "relative" and 0.12 < cal.recovery_mean < 0.3


def test_the_fit_prefers_probes_the_rule_did_not_choose() -> None:
    # Own-recovery probes (prefixes wrong by a false equation) say the questions recover a fifth of
    # the time; probes at located first errors, chosen because they rarely succeeded, say never.
    from types import SimpleNamespace

    from apsgen.label.calibration import fit_from_results

    own = _probes([0.2] * 8, per_q=4)
    located = [[LocatedProbe(p, Probe(0, 0, p.reference)) for p in ps] for ps in _probes([0.0] * 8, per_q=4)]
    both = [SimpleNamespace(own_recovery=OwnRecovery(tuple(o)), located_probes=[], status="searched") for o in own]
    both += [SimpleNamespace(own_recovery=None, located_probes=lo, status="searched") for lo in located]
    cal = fit_from_results(both, CalibrationSpec())
    assert 0.12 < cal.recovery_mean < 0.3 and cal.sampled == 16 and cal.informative == 8
    assert "false equation" in cal.estimator["method"]
    # Too few questions with a false equation: every question's probes, whichever it has.
    few = both[:MIN_QUESTIONS - 1] + both[8:]
    cal = fit_from_results(few, CalibrationSpec())
    assert cal.informative == MIN_QUESTIONS - 1 + 8 and "located first errors" in cal.estimator["method"]
    assert cal.recovery_mean < 0.12


def test_too_small_a_sample_keeps_the_prior_and_says_why() -> None:
    spec = CalibrationSpec()
    cal = fit_calibration(_probes([0.1] * (MIN_QUESTIONS - 1)) + [[], []], spec)
    assert cal.source == "prior" and cal.recovery_mean == spec.prior
    assert f"only {MIN_QUESTIONS - 1} of {MIN_QUESTIONS + 1} sampled questions" in cal.reason
    assert "prior" in cal.render()


def test_the_artifact_round_trips_and_its_digest_tracks_the_distribution() -> None:
    cal = fit_calibration(_probes([0.1] * 12), CalibrationSpec())
    back = Calibration.from_json(cal.to_json())
    assert back == cal and back.digest() == cal.digest()
    assert json.loads(cal.to_json())["digest"] == cal.digest()
    other = fit_calibration(_probes([0.2] * 12), CalibrationSpec())
    assert other.digest() != cal.digest()


def _story_search(problems, order_key=None, seed: int = 5):
    spec = story.StoryWorldSpec(recover_mean=0.1, success_rate=(0.3, 0.8), max_steps=7)
    policy = story.StoryWorldPolicy(spec, seed=seed)
    search = Labelling.of(max_searches=6, screen_samples=8, calibration_questions=8, calibration_searches=4)

    ordered = sorted(problems, key=order_key) if order_key else problems
    run = asyncio.run(label_locally(ordered, Labeller(policy, BoxedVerifier(), Sampling(), seed), search))
    return {p.id: r for p, r in zip(ordered, run.results)}, run.calibration


def test_labels_do_not_depend_on_the_order_of_the_questions() -> None:
    spec = story.StoryWorldSpec(recover_mean=0.1, success_rate=(0.3, 0.8), max_steps=7)
    problems = story.story_problems(16, spec, seed=5)
    shuffled, cal_a = _story_search(problems)
    # Sorted by how often the policy recovers on each question, most first: a curated dataset's order.
    by_recovery, cal_b = _story_search(problems, order_key=lambda p: -story.recovery_of(p.question, spec))
    assert cal_a == cal_b
    for pid, r in shuffled.items():
        other = by_recovery[pid]
        assert [(s.node_id, s.verdict, s.is_first_error, s.n_rollouts) for s in r.steps] == [
            (s.node_id, s.verdict, s.is_first_error, s.n_rollouts) for s in other.steps]
        assert r.label_rule == other.label_rule


def test_the_story_world_plants_errors_and_never_in_a_restatement_or_a_correction() -> None:
    spec = story.StoryWorldSpec(recover_mean=0.3, success_rate=(0.2, 0.5), restate_rate=0.5)
    problems = story.story_problems(30, spec, seed=2)
    policy = story.StoryWorldPolicy(spec, seed=2)
    seen = {"restate": 0, "correction": 0, "error": 0, "clean": 0}
    for p in problems:
        plan = story.plan_for(p.question, spec)
        gen = asyncio.run(policy.generate(p.question, "", 8, Sampling(seed=1)))
        for s in gen.samples:
            off = story.first_error_offset(p.question, s.text, spec)
            paras = s.text.split("\n\n")
            seen["restate"] += sum(x.startswith("On day") for x in paras)
            seen["correction"] += sum("correct count so far" in x for x in paras)
            if off is None:
                seen["clean"] += 1
                continue
            seen["error"] += 1
            start = s.text.rfind("\n\n", 0, off) + 2 if "\n\n" in s.text[:off] else 0
            para = s.text[start:s.text.find("\n\n", off) if "\n\n" in s.text[off:] else len(s.text)]
            assert "=" in para and not para.startswith("On day") and "correct count" not in para
        assert plan.values[-1] == int(p.answer)
    assert all(v > 0 for v in seen.values()), seen


def test_story_world_questions_differ_in_how_often_the_policy_recovers() -> None:
    spec = story.StoryWorldSpec(recover_mean=0.1)
    rates = [story.recovery_of(p.question, spec) for p in story.story_problems(200, spec, seed=1)]
    assert sum(r < 0.02 for r in rates) > 60 and sum(r > 0.3 for r in rates) > 10
    assert 0.05 < sum(rates) / len(rates) < 0.15


def test_story_recoveries_are_announced_and_quiet_ones_are_not() -> None:
    # From a prefix that has just gone wrong, a right answer is a recovery: in the story world it
    # says so (a retraction the step checks read), in the quiet world it just carries on.
    from apsgen.label.text import continuation_error

    recovered = {}
    for announce in (1.0, 0.0):
        spec = story.StoryWorldSpec(recover_mean=0.5, success_rate=(0.6, 0.9), announce_recovery=announce)
        policy = story.StoryWorldPolicy(spec, seed=3)
        flags = []
        for p in story.story_problems(20, spec, seed=3):
            plan = story.plan_for(p.question, spec)
            op, a = plan.ops[0]
            # a misread first step: its equation holds, its result is wrong
            shown = {"+": f"+ {a + 1} = {plan.start + a + 1}", "-": f"- {a + 1} = {plan.start - a - 1}",
                     "×": f"+ 2 = {plan.start + 2}"}[op]
            prefix = f"After the change, {plan.name} has {plan.start} {shown} {plan.unit}.\n\n"
            assert story.first_error_offset(p.question, prefix, spec) is not None
            for s in asyncio.run(policy.generate(p.question, prefix, 8, Sampling(seed=1))).samples:
                if not s.truncated and s.text.rstrip().endswith(f"\\boxed{{{p.answer}}} {plan.unit} at the end."):
                    flags.append(continuation_error(s.text))
        recovered[announce] = flags
    assert recovered[1.0] and all(f is not None for f in recovered[1.0])
    assert recovered[0.0] and not any(f == "retraction" for f in recovered[0.0])


def test_a_story_world_question_it_cannot_parse_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not a story-world question"):
        story.plan_for("What is 2 + 2?", story.StoryWorldSpec())


def test_a_job_too_small_for_a_sample_is_not_calibrated_at_all() -> None:
    # 12 questions give a sample of 3 (a quarter), which could never be informative: nothing is
    # searched twice, and the prior says why.
    spec = story.StoryWorldSpec(recover_mean=0.1, success_rate=(0.3, 0.8), max_steps=7)
    problems = story.story_problems(12, spec, seed=5)
    policy = story.StoryWorldPolicy(spec, seed=5)
    search = Labelling.of(max_searches=4, screen_samples=8)
    run = asyncio.run(label_locally(problems, Labeller(policy, BoxedVerifier(), Sampling(), 5), search))
    cal = run.calibration
    assert cal is not None and cal.source == "prior" and "sample of 3" in cal.reason
    assert run.calibration_results == [] and len(run.results) == 12


SILENT = story.StoryWorldSpec(recover_mean=0.3, success_rate=(0.2, 0.6), error_kinds=(0.0, 0.35, 0.25, 0.25, 0.15),
                              front_load=3.0, carry_rate=0.2, announce_recovery=0.0)


def test_the_silent_world_never_shows_an_error_in_its_text() -> None:
    # How strong policies fail: a misread number, the wrong operation, a miscopied count, a day's
    # event ignored. No wrong step states a false equation or retracts, and a recovery is silent.
    from apsgen.label.text import text_error

    problems = story.story_problems(30, SILENT, seed=4)
    policy = story.StoryWorldPolicy(SILENT, seed=4)
    kinds = {"carry": 0, "skip": 0, "compute": 0}
    hidden = 0
    for p in problems:
        for s in asyncio.run(policy.generate(p.question, "", 8, Sampling(seed=2))).samples:
            assert all(text_error(para) is None for para in s.text.split("\n\n")), s.text
            off = story.first_error_offset(p.question, s.text, SILENT)
            if off is None:
                continue
            para = s.text[s.text.rfind("\n\n", 0, off) + 2 if "\n\n" in s.text[:off] else 0:].split("\n\n")[0]
            kinds["carry" if para.startswith("So far") else "skip" if "still has" in para else "compute"] += 1
            hidden += s.text.rstrip().endswith(f"\\boxed{{{p.answer}}} {story.plan_for(p.question, SILENT).unit} at the end.")
    assert all(v > 0 for v in kinds.values()), kinds
    assert hidden > 0  # some wrong paths still reach the right answer, silently


def test_a_planted_error_is_read_by_the_world_as_wrong() -> None:
    # The search plants an error in a correct step; the world must take the planted count as the
    # running one (off track) and the truth must call it the first error.
    from apsgen.label.text.planting import plant_error

    p = story.story_problems(1, SILENT, seed=6)[0]
    plan = story.plan_for(p.question, SILENT)
    op, a = plan.ops[0]
    sign = {"+": "+", "-": "-", "×": "×"}[op]
    step = f"After the change, {plan.name} has {plan.start} {sign} {a} = {plan.values[0]} {plan.unit}.\n\n"
    planted = plant_error(step)
    assert planted is not None and story.first_error_offset(p.question, planted, SILENT) is not None
    assert story.first_error_offset(p.question, step, SILENT) is None
