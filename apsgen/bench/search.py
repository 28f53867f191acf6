"""`apsgen bench search`: every label rule and the per-step MC baseline on a grid of simulated worlds.

The grid crosses the simulated policy's recovery rate (a wrong prefix still ending right), the
questions' solve-rate range and k. Every cell gets the same problems, seeds and real verifier for
each rule, and the simulated policy also truncates, drops answers, returns empty completions,
starts completions with a blank line and has hard steps (see `realism`). Scores are against the
planted truth: a located first error is right when its step holds the first wrong result of its
path; a state's verdict is right when it says "correct" exactly for prefixes without a planted
error. Tokens are counted per *correctly* located first error. Report on seeds the rules were not
tuned on (`--seeds`; the defaults were tuned on seed 1).

A simulated LLM judge (`--judge-accuracy`, default 0.9: it names the planted first wrong step of the
path it reads with that probability) reads every labelled path, as `judge:` does in a job; the
consensus columns give the precision of the first errors it agreed with and the share it kept
(what `apsgen export --consensus` would write). The simulated judge's mistakes are independent
of the Monte Carlo ones, so these columns are an upper bound for a real judge.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import product
from typing import Any

import yaml

from apsgen.config import Labelling, PaperLabelSpec, SequentialLabelSpec, SimulatedSpec, ThresholdLabelSpec, migrate
from apsgen.pipeline import Labeller, label_locally
from apsgen.policy.base import Sampling
from apsgen.problem import Problem
from apsgen.search import ProblemResult
from apsgen.worlds import chain, reasoning, story

RULES = ("paper", "threshold", "sequential")
BASELINE = "per_step_mc"
RECOVER = (0.0, 0.02, 0.1, 0.25)
SUCCESS = ((0.05, 0.5), (0.5, 0.95))
KS = (8, 16)
WORLDS = ("chain", "story", "quiet", "silent", "reasoning")
# How a reasoning trace is split (`--steps`): every paragraph a step, or sections of about
# mean length / N tokens (steps.mode sections, per_solution N); other worlds keep their own steps.
STEPS = ("paragraphs", "sections:16", "sections:8")
REASONING_MAX_TOKENS = 560  # the reasoning world's budget in words: it cuts about a fifth of whole traces
ORDERS = ("shuffled", "sorted")


@dataclass(frozen=True)
class World:
    """One simulated world of a cell: its problems, its policy, its planted truth, and the hidden
    per-question key a dataset sorted by source or difficulty would follow."""

    name: str
    spec: Any
    problems: Callable[[int, int], list[Problem]]
    policy: Callable[[int], Any]
    first_error_offset: Callable[[str, str], int | None]
    order_key: Callable[[Problem], float]
    max_tokens: int = 1024
    on_track: Callable[[str, str], bool] | None = None  # the prefix's current count is right


# The silent world: how strong policies fail on competition math (ProcessBench's human labels: first
# errors early, a sixth of erroneous MATH solutions still ending right). No wrong step is a false
# equation (a misread number, the wrong operation, a miscopied running count, a day's event
# ignored), the first two computations err three times as often (setup), the running count is
# restated now and then, and every recovery is silent: the path just goes on from the right count.
SILENT: dict[str, Any] = {"error_kinds": (0.0, 0.35, 0.25, 0.25, 0.15), "front_load": 3.0, "carry_rate": 0.2,
                          "announce_recovery": 0.0}


def make_world(name: str, recover: float, success: tuple[float, float], hard_step_rate: float) -> World:
    """`chain`: apsgen.worlds.chain, the world the rule was first written against (one recovery
    rate per cell, every step a computation); sorted hardest first. `story`:
    apsgen.worlds.story, built from how real policies fail (recovery that differs by
    question, self-corrections, traps, restatements, several kinds of error); sorted by how often
    the policy recovers on each question, most first. `quiet`: the story world whose recoveries are
    never announced (no "I made a mistake"): only the rollout counts can see them. `silent`: the
    story world as strong policies fail (see SILENT): nothing in a wrong step's text shows it."""
    if name == "chain":
        spec = realism(recover, success, hard_step_rate)
        return World(
            name, spec,
            lambda n, seed: chain.simulated_problems(n, spec, seed=seed),
            lambda seed: chain.SimulatedPolicy(spec, seed=seed),
            lambda q, text: chain.first_error_offset(q, text, spec),
            lambda p: -chain.plan_for(p.question, spec).error_rate,
        )
    if name in ("story", "quiet", "silent"):
        sspec = story.StoryWorldSpec(recover_mean=recover, success_rate=success,
                                     **(SILENT if name == "silent" else {"announce_recovery": 1.0 if name == "story" else 0.0}))
        return World(
            name, sspec,
            lambda n, seed: story.story_problems(n, sspec, seed=seed),
            lambda seed: story.StoryWorldPolicy(sspec, seed=seed),
            lambda q, text: story.first_error_offset(q, text, sspec),
            lambda p: -story.recovery_of(p.question, sspec),
        )
    if name == "reasoning":
        rspec = reasoning.ReasoningWorldSpec(recover_mean=recover, success_rate=success)
        return World(
            name, rspec,
            lambda n, seed: reasoning.reasoning_problems(n, rspec, seed=seed),
            lambda seed: reasoning.ReasoningWorldPolicy(rspec, seed=seed),
            lambda q, text: reasoning.first_error_offset(q, text, rspec),
            lambda p: -reasoning.recovery_of(p.question, rspec),
            max_tokens=REASONING_MAX_TOKENS,
            on_track=lambda q, text: reasoning.on_track(q, text, rspec),
        )
    raise ValueError(f"unknown world {name!r}; choose from {', '.join(WORLDS)}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--problems", type=int, default=200, help="simulated problems per cell and seed (default 200)")
    parser.add_argument("--seeds", default="2", help="problem/policy seeds, comma-separated (default 2; tuned on 1)")
    parser.add_argument("--recover", default=",".join(map(str, RECOVER)), help="recovery rates of the grid")
    parser.add_argument("--k", default=",".join(map(str, KS)), help="rollouts per estimate, of the grid")
    parser.add_argument("--success", default="low,high", help="solve-rate ranges: low (0.05-0.5), high (0.5-0.95)")
    parser.add_argument("--rules", default=",".join((*RULES, BASELINE)), help="label rules to run, and per_step_mc")
    parser.add_argument("--world", default="chain,story",
                        help="simulated worlds: chain (the rule's own model), story (built apart from it), quiet (story "
                        "whose recoveries are never announced), silent (no wrong step shows in its text, recoveries "
                        "silent), reasoning (long thinking sections with reflections, then the answer); default chain,story")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help="how the reasoning world's traces are split: paragraphs (every paragraph a step), "
                        "sections:N (steps.mode sections, per_solution N); default " + ",".join(STEPS))
    parser.add_argument("--order", default=",".join(ORDERS),
                        help="question order: shuffled, sorted (by difficulty or recovery, as curated datasets are)")
    parser.add_argument("--hard-step-rate", type=float, default=0.05, help="share of hard steps (default 0.05)")
    parser.add_argument("--max-searches", type=int, default=100, help="OmegaPRM selections per question")
    parser.add_argument("--screen-samples", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=2, help="cells run in parallel processes (default 2)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a search setting for the label rules (not the baseline), e.g. --set k_max=48; repeatable",
    )
    parser.add_argument("--judge-accuracy", type=float, default=0.9,
                        help="accuracy of the simulated judge for the consensus columns (default 0.9; -1: no judge)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of tables")


def realism(recover: float, success: tuple[float, float], hard_step_rate: float) -> SimulatedSpec:
    """The simulated world of one cell: an imperfect policy, as real ones are."""
    return SimulatedSpec(
        min_steps=4,
        max_steps=16,
        success_rate=success,
        recover_rate=recover,
        hard_step_rate=hard_step_rate,
        unparseable_rate=0.02,
        truncate_rate=0.02,
        empty_rate=0.01,
        blank_start_rate=0.05,
    )


def steps_settings(steps: str) -> dict[str, Any]:
    """A `--steps` value as job settings: the reasoning world's thinking section and its step split."""
    if steps == "default":
        return {}
    if steps == "paragraphs":
        return {"reasoning": {"enabled": True}, "steps": {"mode": "delimiter"}}
    mode, _, n = steps.partition(":")
    if mode != "sections" or not n.isdigit() or int(n) < 1:
        raise SystemExit(f"apsgen bench search: bad --steps value {steps!r}; use paragraphs or sections:N")
    return {"reasoning": {"enabled": True}, "steps": {"mode": "sections", "per_solution": int(n)}}


def _with_steps(raw: dict[str, Any], steps: str) -> dict[str, Any]:
    """`raw` (migrated job settings) with the `--steps` value's sections merged in."""
    for section, values in steps_settings(steps).items():
        raw.setdefault(section, {}).update(values)
    return raw


def rule_spec(rule: str, k: int, args: argparse.Namespace, steps: str = "default") -> Labelling:
    """A rule's settings in a cell: the job defaults, k, the bench's search size, the world's steps
    (`steps_settings`), and `--set` overrides (`label.k_max=48`, or a key by its old flat name,
    `k_max=48`) for the label rules."""
    common: dict[str, Any] = {"k": k, "max_searches": args.max_searches, "screen_samples": args.screen_samples}
    if rule == BASELINE:  # Math-Shepherd: every step's MC, hard estimation (MC = 0 is wrong)
        base: dict[str, Any] = {"search": {"mode": "per_step_mc", "label_rule": "paper", "step_checks": False, **common}}
        migrate(base)
        return Labelling.model_validate(_with_steps(base, steps))
    if rule != Labelling().label.rule:  # the paper's and the threshold rule as published: MC alone,
        # and a search that ends when its pool runs dry, counting every selection
        common.update(step_checks=False, refill_pool=False, skip_located=False)
    else:
        common["k_max"] = max(32, 4 * k)
    if rule == "threshold":  # the former opt-in guard: one lucky rollout in k is not enough
        common.update(mc_threshold=1 / k, pool_min_mc=3 / k)
    raw: dict[str, Any] = {"search": {"label_rule": rule, **common}}
    migrate(raw)
    _with_steps(raw, steps)
    for item in args.overrides:  # after the defaults, so they win
        key, _, value = item.partition("=")
        section, _, name = key.rpartition(".")
        one: dict[str, Any] = {section or "search": {name: yaml.safe_load(value)}}
        migrate(one)
        for sec, values in one.items():
            raw.setdefault(sec, {}).update(values)
    # A label setting applies to the rules that have it (`--set k_max=48` to the sequential rule only).
    fields = {"sequential": SequentialLabelSpec, "threshold": ThresholdLabelSpec, "paper": PaperLabelSpec}[rule].model_fields
    raw["label"] = {k: v for k, v in raw.get("label", {}).items() if k in fields}
    return Labelling.model_validate(raw)


def score(problems: list[Problem], results: list[ProblemResult], world: World) -> dict[str, Any]:
    """Counts against the planted truth (summed over seeds by the caller)."""
    c = dict.fromkeys(
        (
            "problems located right searches tokens zero_search "
            "right_root located_root right_pool located_pool searches_root "
            "truth_correct said_wrong truth_wrong said_correct undecided_states "
            "judged_located located_kept right_kept just_wrong_correct just_wrong_rollouts "
            "called_correct called_correct_right allgood_paths allgood_flawless "
            "solutions solution_steps rollouts truncated reflections effective effective_right ineffective ineffective_right "
            "corrected_paths corrected_plus corrected_plus_right corrected_minus corrected_minus_right"
        ).split(),
        0,
    )
    c["problems"] = len(problems)
    from apsgen.paths import labelled_paths, result_rows, solution_paths

    for problem, result in zip(problems, results, strict=True):
        c["tokens"] += result.generated_tokens
        c["rollouts"] += result.n_rollouts
        c["truncated"] += (result.outcomes or {}).get("truncated", 0)
        c["searches"] += result.n_searches
        c["searches_root"] += result.searches_from_root
        if result.status == "searched" and result.n_searches == 0:
            c["zero_search"] += 1
        for s in result.steps:
            full = s.prefix + s.step_text
            off = world.first_error_offset(problem.question, full)
            if s.label_source in ("wrong_solution", "correct_solution"):  # a whole sampled solution
                c["solutions"] += 1
                c["solution_steps"] += s.step_index + 1
            if s.reflects_on is not None and world.on_track is not None:
                # A reflection judged back on track (correct) or not: right when the count it leaves is (not) right.
                back = world.on_track(problem.question, full)
                c["reflections"] += 1
                c["effective"] += s.reflection_verdict == "correct"
                c["effective_right"] += s.reflection_verdict == "correct" and back
                c["ineffective"] += s.reflection_verdict == "wrong"
                c["ineffective_right"] += s.reflection_verdict == "wrong" and not back
            if s.is_first_error:
                good = off is not None and s.char_start <= off < s.char_end
                where = result.first_error_origin.get(s.node_id, "root")
                c["located"] += 1
                c["right"] += good
                c[f"located_{where}"] += 1
                c[f"right_{where}"] += good
                if s.judge_outcome is not None:
                    c["judged_located"] += 1
                    kept = s.judge_outcome == "agree"
                    c["located_kept"] += kept
                    c["right_kept"] += kept and good
            if off is not None and s.char_start <= off < s.char_end and s.label_source == "rollouts":
                # A prefix that has just gone wrong: how often its completions still end right.
                c["just_wrong_correct"] += s.n_correct
                c["just_wrong_rollouts"] += s.n_rollouts
            if s.verdict == "undecided":
                # Probed and left undecided; the stored tree also holds unprobed states of searched paths.
                c["undecided_states"] += s.n_rollouts > 0
            elif off is None:
                c["truth_correct"] += 1
                c["said_wrong"] += s.verdict == "wrong"
            else:
                c["truth_wrong"] += 1
                c["said_correct"] += s.verdict == "correct"
            if s.verdict == "correct":  # a positive label a PRM trains on
                c["called_correct"] += 1
                c["called_correct_right"] += off is None
        rows = result_rows(problem, result)
        if world.on_track is not None:
            # The `corrected` export: past the first error, a span labelled - is right where the trace is
            # off track, and a step labelled + (the reflection, and after it) where it is back on track.
            for path, segments in labelled_paths(rows, convention="corrected"):
                if path.reflection is None:
                    continue
                c["corrected_paths"] += 1
                text, past = "", False
                for seg, good in segments:
                    text += seg.text
                    past = past or seg.is_first_error
                    if past:
                        on = world.on_track(problem.question, text)
                        c["corrected_plus" if good else "corrected_minus"] += 1
                        c["corrected_plus_right" if good else "corrected_minus_right"] += on == good
        # Paths stored as all-good (every step +): flawless when no step of the whole path is wrong.
        for path in solution_paths(rows):
            if path.correct:
                text = "".join(seg.text for seg in path.segments)
                c["allgood_paths"] += 1
                c["allgood_flawless"] += world.first_error_offset(problem.question, text) is None
    return c


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def figures(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "precision": _ratio(c["right"], c["located"]),
        "recall": _ratio(c["right"], c["searches"]),
        "correct_per_question": _ratio(c["right"], c["problems"]),
        "tokens_per_correct": _ratio(c["tokens"], c["right"]),
        "zero_search_questions": c["zero_search"],
        "false_wrong_rate": _ratio(c["said_wrong"], c["truth_correct"]),
        "false_correct_rate": _ratio(c["said_correct"], c["truth_wrong"]),
        # Positive labels: states called correct that are, and paths stored as all-good that are flawless.
        "correct_precision": _ratio(c["called_correct_right"], c["called_correct"]),
        "allgood_precision": _ratio(c["allgood_flawless"], c["allgood_paths"]),
        "allgood_per_question": _ratio(c["allgood_paths"], c["problems"]),
        "undecided_states": c["undecided_states"],
        "wrong_prefix_success": _ratio(c["just_wrong_correct"], c["just_wrong_rollouts"]),
        "steps_per_solution": _ratio(c["solution_steps"], c["solutions"]),
        "truncated_share": _ratio(c["truncated"], c["rollouts"]),
        "reflections": {"per_question": _ratio(c["reflections"], c["problems"]),
                        "effective": c["effective"], "effective_precision": _ratio(c["effective_right"], c["effective"]),
                        "ineffective": c["ineffective"],
                        "ineffective_precision": _ratio(c["ineffective_right"], c["ineffective"])},
        "corrected": {"paths_per_question": _ratio(c["corrected_paths"], c["problems"]),
                      "plus_precision": _ratio(c["corrected_plus_right"], c["corrected_plus"]),
                      "minus_precision": _ratio(c["corrected_minus_right"], c["corrected_minus"])},
        "consensus": {
            "precision": _ratio(c["right_kept"], c["located_kept"]),
            "kept": _ratio(c["located_kept"], c["judged_located"]),
            "correct_per_question": _ratio(c["right_kept"], c["problems"]),
        },
        "root": {"searches": c["searches_root"], "located": c["located_root"], "precision": _ratio(c["right_root"], c["located_root"])},
        "pool": {
            "searches": c["searches"] - c["searches_root"],
            "located": c["located_pool"],
            "precision": _ratio(c["right_pool"], c["located_pool"]),
        },
    }


Cell = tuple[str, str, float, tuple[float, float], int, str, str]


def run_cell(cell: Cell, seeds: list[int], args: argparse.Namespace) -> dict[str, Any]:
    from apsgen.config import SimulatedJudgeSpec
    from apsgen.judge import SimulatedJudge
    from apsgen.verify import Verifier

    world_name, order, recover, success, k, rule, steps = cell
    world = make_world(world_name, recover, success, args.hard_step_rate)
    search = rule_spec(rule, k, args, steps)
    total: dict[str, Any] = {}
    calibrations = []
    t0 = time.perf_counter()
    with Verifier() as verifier:
        for seed in seeds:
            problems = world.problems(args.problems, seed)
            if order == "sorted":
                problems = sorted(problems, key=world.order_key)
            policy = world.policy(seed)
            judge = (
                SimulatedJudge(SimulatedJudgeSpec(accuracy=args.judge_accuracy), seed=seed, policy_spec=world.spec)
                if args.judge_accuracy >= 0 else None
            )

            labeller = Labeller(policy, verifier, Sampling(max_tokens=world.max_tokens), seed, judge)
            # As a job runs: calibrate on a seeded sample, then label every question against it.
            run = asyncio.run(label_locally(problems, labeller, search))
            results, calibration = run.results, run.calibration
            cal_results = [r for r in run.calibration_results if r is not None]
            counts = score(problems, results, world)
            # What calibration cost is part of the bill.
            counts["tokens"] += sum(r.generated_tokens for r in cal_results)
            counts["calibration_tokens"] = sum(r.generated_tokens for r in cal_results)
            total = {key: total.get(key, 0) + v for key, v in counts.items()}
            if calibration is not None:
                calibrations.append({"mean": round(calibration.recovery_mean, 4),
                                     "concentration": round(calibration.recovery_concentration, 2),
                                     "source": calibration.source, "model": calibration.recovery_model})
    return {
        "world": world_name,
        "order": order,
        "recover": recover,
        "success": list(success),
        "k": k,
        "rule": rule,
        "steps": steps,
        **figures(total),
        "calibration": calibrations,
        "calibration_tokens": total.get("calibration_tokens", 0),
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def parse_grid(args: argparse.Namespace) -> list[Cell]:
    ranges = {"low": SUCCESS[0], "high": SUCCESS[1]}
    try:
        recovers = [float(x) for x in args.recover.split(",")]
        ks = [int(x) for x in args.k.split(",")]
        successes = [ranges[x] for x in args.success.split(",")]
    except (KeyError, ValueError) as e:
        raise SystemExit(f"apsgen bench search: bad grid value {e}; see --help") from None
    rules = args.rules.split(",")
    for r in rules:
        if r not in (*RULES, BASELINE):
            raise SystemExit(f"apsgen bench search: unknown rule {r!r}; choose from {', '.join((*RULES, BASELINE))}")
    worlds, orders = args.world.split(","), args.order.split(",")
    for w in worlds:
        if w not in WORLDS:
            raise SystemExit(f"apsgen bench search: unknown world {w!r}; choose from {', '.join(WORLDS)}")
    for o in orders:
        if o not in ORDERS:
            raise SystemExit(f"apsgen bench search: unknown order {o!r}; choose from {', '.join(ORDERS)}")
    steps = args.steps.split(",")
    for st in steps:
        steps_settings(st)  # a bad value fails here, before any cell runs
    return [(w, o, r, s, k, rule, st) for w, o, r, s, k in product(worlds, orders, recovers, successes, ks)
            for st in (steps if w == "reasoning" else ["default"]) for rule in rules]


def run(args: argparse.Namespace) -> int:
    seeds = [int(x) for x in str(args.seeds).split(",")]
    grid = parse_grid(args)
    default_rule = Labelling().label.rule
    t0 = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as ex:
            cells = list(ex.map(run_cell, grid, [seeds] * len(grid), [args] * len(grid)))
    else:
        cells = [run_cell(c, seeds, args) for c in grid]
    report = {
        "default_rule": default_rule,
        "settings": {
            "problems_per_cell": args.problems * len(seeds),
            "seeds": seeds,
            "hard_step_rate": args.hard_step_rate,
            "max_searches": args.max_searches,
            "screen_samples": args.screen_samples,
            "judge_accuracy": args.judge_accuracy if args.judge_accuracy >= 0 else None,
            "wall_s": round(time.perf_counter() - t0, 1),
        },
        "cells": cells,
    }
    print(json.dumps(report, sort_keys=True) if args.json else format_tables(report))
    return 0


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def format_tables(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = [
        f"apsgen bench search: {s['problems_per_cell']} simulated problems per cell (seeds {s['seeds']}), "
        f"hard steps {s['hard_step_rate']}, max_searches {s['max_searches']}, {s['wall_s']} s; "
        f"default rule: {report['default_rule']}",
        "precision = located first errors at the planted step; recall = right / searches; "
        "tok/right = generated tokens per correctly located first error; +prec = states called correct that are; "
        "AG prec = paths stored as all-good that are flawless, AG/q = such paths per question; cons prec / kept = "
        f"precision of the first errors a simulated judge (accuracy {s['judge_accuracy']}) agreed with, and the share it kept",
        f"{'world':>5} {'order':>8} {'recover':>7} {'success':>9} {'k':>3} {'rule':>11} {'precision':>9} {'recall':>6} {'right/q':>7} "
        f"{'tok/right':>9} {'vs psmc':>7} {'recov':>5} {'+prec':>5} {'AG prec':>7} {'AG/q':>4} {'0-search':>8} {'F-wrong':>7} {'F-corr':>7} "
        f"{'root prec':>9} {'pool prec':>9} {'cons prec':>9} {'kept':>5}",
    ]
    def key(c: dict[str, Any]) -> tuple:
        return (c["world"], c["order"], c["recover"], tuple(c["success"]), c["k"], c.get("steps", "default"))

    base = {key(c): c for c in report["cells"] if c["rule"] == BASELINE}
    reasoning_cells = [c for c in report["cells"] if c.get("steps", "default") != "default"]
    for c in report["cells"]:
        if c in reasoning_cells:
            continue
        b = base.get(key(c))
        speedup = _ratio(b["tokens_per_correct"], c["tokens_per_correct"]) if b and b["tokens_per_correct"] and c["tokens_per_correct"] else None
        lines.append(
            f"{c['world']:>5} {c['order']:>8} {c['recover']:>7} {c['success'][0]:>4}-{c['success'][1]:<4} {c['k']:>3} {c['rule']:>11} "
            f"{_f(c['precision'], '.3f'):>9} {_f(c['recall'], '.3f'):>6} {_f(c['correct_per_question'], '.1f'):>7} "
            f"{_f(c['tokens_per_correct'], ',.0f'):>9} {_f(speedup, '.2f'):>7} {_f(c['wrong_prefix_success'], '.3f'):>5} "
            f"{_f(c['correct_precision'], '.3f'):>5} {_f(c['allgood_precision'], '.3f'):>7} {_f(c['allgood_per_question'], '.1f'):>4} "
            f"{c['zero_search_questions']:>8} "
            f"{_f(c['false_wrong_rate'], '.3f'):>7} {_f(c['false_correct_rate'], '.3f'):>7} "
            f"{_f(c['root']['precision'], '.3f'):>9} {_f(c['pool']['precision'], '.3f'):>9} "
            f"{_f(c['consensus']['precision'], '.3f'):>9} {_f(c['consensus']['kept'], '.2f'):>5}"
        )
    if reasoning_cells:
        lines += [
            "",
            "reasoning world, per step setting: steps/sol = steps of a sampled solution; cut = rollouts truncated by "
            "the budget (no answer); refl/q = reflections recorded on located first errors per question; eff prec = "
            "reflections judged back on track that are, ineff prec = judged not back on track that are not; "
            "export --convention corrected: corr/q = corrected paths per question, span -prec = steps of a corrected "
            "span labelled - that are off track, corr +prec = steps labelled + past a first error (the reflection on) "
            "that are back on track",
            f"{'order':>8} {'recover':>7} {'success':>9} {'k':>3} {'rule':>11} {'steps':>11} {'precision':>9} {'right/q':>7} "
            f"{'tok/right':>9} {'vs psmc':>7} {'recov':>5} {'+prec':>5} {'AG prec':>7} {'AG/q':>4} {'steps/sol':>9} "
            f"{'cut':>5} {'refl/q':>6} {'eff prec':>8} {'ineff prec':>10} {'corr/q':>6} {'span -prec':>10} {'corr +prec':>10}",
        ]
        for c in reasoning_cells:
            b = base.get(key(c))
            speedup = (_ratio(b["tokens_per_correct"], c["tokens_per_correct"])
                       if b and b["tokens_per_correct"] and c["tokens_per_correct"] else None)
            r = c["reflections"]
            lines.append(
                f"{c['order']:>8} {c['recover']:>7} {c['success'][0]:>4}-{c['success'][1]:<4} {c['k']:>3} {c['rule']:>11} "
                f"{c['steps']:>11} {_f(c['precision'], '.3f'):>9} {_f(c['correct_per_question'], '.1f'):>7} "
                f"{_f(c['tokens_per_correct'], ',.0f'):>9} {_f(speedup, '.2f'):>7} {_f(c['wrong_prefix_success'], '.3f'):>5} "
                f"{_f(c['correct_precision'], '.3f'):>5} {_f(c['allgood_precision'], '.3f'):>7} "
                f"{_f(c['allgood_per_question'], '.1f'):>4} {_f(c['steps_per_solution'], '.1f'):>9} "
                f"{_f(c['truncated_share'], '.3f'):>5} {_f(r['per_question'], '.2f'):>6} "
                f"{_f(r['effective_precision'], '.3f'):>8} {_f(r['ineffective_precision'], '.3f'):>10} "
                f"{_f(c['corrected']['paths_per_question'], '.2f'):>6} {_f(c['corrected']['minus_precision'], '.3f'):>10} "
                f"{_f(c['corrected']['plus_precision'], '.3f'):>10}"
            )
    return "\n".join(lines)
