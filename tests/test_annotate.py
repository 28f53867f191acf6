"""Labelling given solutions (search.mode annotate), ProcessBench scoring, and the LLM-judge
consensus filter, on the simulated policy and the simulated judge (planted truth known)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from apsgen.config import JobSpec, JudgeSpec, PolicySpec, SimulatedJudgeSpec, SimulatedSpec, SpecError, parse_spec
from apsgen.eval.processbench import (
    Item,
    Prediction,
    annotate_items,
    evaluate,
    load_items,
    located_step,
    score,
    to_problem,
    with_gold_answers,
)
from apsgen.judge import SimulatedJudge, make_judge
from apsgen.judge.prompt import parse_first_error, render_request
from tests.conftest import REPO

FIXTURES = REPO / "tests" / "fixtures"
SHORT, LONG = FIXTURES / "processbench_sim_short.json", FIXTURES / "processbench_sim_long.json"


def sim_spec(**search: object) -> JobSpec:
    return parse_spec({
        "name": "t", "dataset": {"path": "x", "steps_column": "steps"}, "policy": {"backend": "simulated"},
        "search": {"mode": "annotate", **search},
    })


def run_items(path: Path, spec: JobSpec):  # type: ignore[no-untyped-def]
    items, bad = load_items(path)
    assert not bad
    items, without, _ = with_gold_answers(items)
    assert not without
    results = asyncio.run(annotate_items([to_problem(i, path.stem) for i in items], spec, concurrency=8))
    return items, results


# -- annotate mode --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["binary", "per_step"])
def test_annotate_locates_planted_first_errors_of_wrong_solutions(how: str) -> None:
    items, results = run_items(SHORT, sim_spec(annotate=how))
    wrong_final = [(i, r) for i, r in zip(items, results) if i.final_answer_correct is False]
    correct = [(i, r) for i, r in zip(items, results) if i.label == -1]
    assert len(wrong_final) >= 6 and len(correct) >= 6
    hits = sum(located_step(r) == i.label for i, r in wrong_final)
    assert hits >= len(wrong_final) - 1  # the planted step, on the given solution's own text
    assert all(located_step(r) == -1 for _, r in correct)
    for item, r in wrong_final:
        assert r.solution_source == "given" and r.solution_outcome == "wrong"
        first = [s for s in r.steps if s.is_first_error]
        if first:  # the located state is the labelled step of the given text, nothing else
            assert first[0].step_text.strip() == item.steps[first[0].step_index]
    # the binary search pays for fewer estimates than judging every step
    if how == "binary":
        assert sum(r.n_rollouts for _, r in wrong_final) < 64 * len(wrong_final)


def test_a_right_answer_does_not_clear_a_wrong_step_the_judge_sees_it() -> None:
    # Items whose final answer is right though a step is wrong: once the running value is right
    # again, completions end right, so Monte Carlo labels cannot see the step (ProcessBench's
    # lesson). The judge can: it disagrees, and the consensus filter drops those labels.
    spec = sim_spec()
    spec.judge = JudgeSpec(backend="simulated", simulated=SimulatedJudgeSpec(accuracy=1.0))
    items, results = run_items(SHORT, spec)
    lucky = [(i, r) for i, r in zip(items, results) if i.final_answer_correct and i.label != -1]
    assert lucky
    for item, r in lucky:
        assert r.solution_outcome == "correct" and r.n_judged_paths == 1
        if located_step(r) != item.label:
            assert r.n_consensus_paths == 0  # the judge names the real step: no consensus
    agree = [r for i, r in zip(items, results) if located_step(r) == i.label]
    assert all(r.n_consensus_paths == r.n_judged_paths == 1 for r in agree)


def test_a_completer_that_never_solves_the_question_labels_nothing() -> None:
    # Every prefix would read MC 0, so no evidence separates steps: skipped, not labelled by noise.
    spec = sim_spec()
    spec.policy.simulated = SimulatedSpec(success_rate=(0.0, 0.0), recover_rate=0.0)
    items, results = run_items(SHORT, spec)
    assert all(r.status == "skipped" and r.skip_reason == "all_wrong" and not r.steps for r in results)
    assert all(located_step(r) is None for r in results)


def test_annotate_is_deterministic() -> None:
    a = run_items(SHORT, sim_spec())[1]
    b = run_items(SHORT, sim_spec())[1]
    assert [(r.n_rollouts, [s.mc_value for s in r.steps]) for r in a] == [(r.n_rollouts, [s.mc_value for s in r.steps]) for r in b]


def test_spec_says_which_column_annotate_needs() -> None:
    with pytest.raises(SpecError, match="steps_column"):
        parse_spec({"name": "t", "dataset": {"path": "x"}, "search": {"mode": "annotate"}})
    with pytest.raises(SpecError, match="only search.mode annotate"):
        parse_spec({"name": "t", "dataset": {"path": "x", "steps_column": "steps"}})
    with pytest.raises(SpecError, match="not both"):
        parse_spec({"name": "t", "dataset": {"path": "x", "steps_column": "a", "solution_column": "b"},
                    "search": {"mode": "annotate"}})


def test_annotate_job_end_to_end_with_judge_export_and_stats(tmp_path: Path) -> None:
    # `apsgen run` on a dataset file with a steps column: rows, resume, export, consensus, stats.
    from apsgen.cli.main import main
    from apsgen.io.stats import compute_stats

    items = json.loads(SHORT.read_text())
    data = tmp_path / "given.jsonl"
    answers = {}
    for it in items:
        if it["final_answer_correct"]:
            answers[it["problem"]] = it["steps"][-1].rsplit("boxed{", 1)[1].split("}")[0]
    with data.open("w") as f:
        for it in items:
            f.write(json.dumps({"question": it["problem"], "answer": answers[it["problem"]], "steps": it["steps"]}) + "\n")
        f.write(json.dumps({"question": "Start with 3. Then, in order: add 4.", "answer": "7", "steps": ["ok", " "]}) + "\n")
    job = tmp_path / "job.yaml"
    job.write_text(
        "name: given\n"
        f"dataset: {{path: {data}, steps_column: steps, answer_format: plain}}\n"
        "policy: {backend: simulated, model: simulated}\n"
        "search: {mode: annotate}\n"
        "judge: {backend: simulated, simulated: {accuracy: 0.9}}\n"
        "runner: {num_workers: 1}\n"
    )
    out = tmp_path / "out"
    assert main(["run", str(job), "--output", str(out), "--no-progress"]) == 0
    stats = compute_stats(str(out))
    assert stats.problems_done == len(items) and stats.bad_rows == 1  # the blank step is reported
    assert stats.given_solutions == len(items)
    assert 0 < stats.consensus_paths < stats.judged_paths
    steps = pq.read_table(out / "data").to_pylist()
    assert {r["solution_source"] for r in steps} == {"given"}
    assert {r["search_mode"] for r in steps} == {"annotate"}
    # resume: nothing is searched twice
    assert main(["run", str(job), "--output", str(out), "--no-progress"]) == 0
    assert compute_stats(str(out)).problems_done == len(items)

    assert main(["export", str(out), "--format", "stepwise", "--output", str(tmp_path / "all")]) == 0
    assert main(["export", str(out), "--format", "stepwise,math-aps", "--consensus", "--output", str(tmp_path / "kept")]) == 0
    n_all = pq.read_table(tmp_path / "all" / "stepwise").num_rows
    n_kept = pq.read_table(tmp_path / "kept" / "stepwise").num_rows
    assert n_kept == stats.consensus_paths < n_all == stats.judged_paths
    assert main(["export", str(out), "--format", "stepwise", "--consensus", "--threshold", "0.5"]) == 2


def test_consensus_export_needs_a_judge(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from apsgen.cli.main import main

    job = tmp_path / "job.yaml"
    job.write_text("name: nojudge\ndataset: {path: simulated, limit: 3}\npolicy: {backend: simulated}\nrunner: {num_workers: 1}\n")
    assert main(["run", str(job), "--output", str(tmp_path / "o"), "--no-progress"]) == 0
    assert main(["export", str(tmp_path / "o"), "--format", "stepwise", "--consensus"]) == 2
    assert "no judge verdicts" in capsys.readouterr().err


# -- ProcessBench -------------------------------------------------------------------------


def test_processbench_fixture_scores_against_its_planted_labels() -> None:
    t0 = time.perf_counter()
    spec = sim_spec()
    report = evaluate([str(SHORT), str(LONG)], spec)
    assert time.perf_counter() - t0 < 60
    for path, sub in zip((SHORT, LONG), report.subsets):
        items, results = run_items(path, spec)
        located = [located_step(r) for r in results]
        err = [(i, p) for i, p in zip(items, located) if i.label != -1]
        ok = [(i, p) for i, p in zip(items, located) if i.label == -1]
        assert sub.n_items == 20 and sub.n_erroneous == len(err) and sub.n_correct == len(ok)
        assert sub.acc_erroneous == pytest.approx(sum(p == i.label for i, p in err) / len(err))
        assert sub.acc_correct == pytest.approx(sum(p == -1 for _, p in ok) / len(ok))
        assert sub.acc_correct == 1.0
        # every wrong final answer's planted step is found or left undecided, never another step
        # (the planted steps state false equations: the step checks bound each search there)
        wrong_final = [(i, p) for i, p in zip(items, located) if i.final_answer_correct is False]
        assert all(p in (i.label, None) for i, p in wrong_final)
        assert sum(p == i.label for i, p in wrong_final) >= len(wrong_final) - 2
        # the report says how many located first errors the step checks settled (the planted ones
        # state false equations) and never claims more than were located
        assert 0 < sub.n_by_text <= sub.n_located == sum(p is not None and p >= 0 for p in located)
        assert f"text checks settled {sub.n_by_text} of {sub.n_located}" in report.render()
    assert report.mean_f1 == pytest.approx(sum(s.f1 for s in report.subsets) / 2)


def test_eval_cli_prints_the_table_and_json(capsys) -> None:  # type: ignore[no-untyped-def]
    from apsgen.cli.main import main

    assert main(["eval", "processbench", str(SHORT), str(LONG)]) == 0
    out = capsys.readouterr()
    assert "processbench_sim_short" in out.out and "mean F1" in out.out and "simulated" in out.err
    assert main(["eval", "processbench", str(SHORT), "--json", "--limit", "6", "--set", "judge.backend=simulated"]) == 0
    data = json.loads(capsys.readouterr().out)
    sub = data["subsets"][0]
    assert sub["n_items"] == 6 and sub["kept"] is not None and 0 <= sub["f1_kept"] <= 1
    assert main(["eval", "processbench", str(FIXTURES / "missing.json")]) == 2


def test_f1_counts_an_undecided_item_as_a_miss() -> None:
    def p(label: int, located: int | None) -> Prediction:
        return Prediction(Item("i", "q", ("a", "b", "c"), label, None), located)

    s = score("x", [p(1, 1), p(2, 0), p(0, None), p(-1, -1), p(-1, None)])
    assert s.acc_erroneous == pytest.approx(1 / 3) and s.acc_correct == pytest.approx(1 / 2)
    assert s.f1 == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert s.decided == pytest.approx(3 / 5)


def test_processbench_files_bad_items_and_gold_answers(tmp_path: Path) -> None:
    good = {"id": "a", "problem": "P", "steps": ["x", "y \\boxed{5}"], "final_answer_correct": True, "label": -1}
    lines = [
        good,
        {**good, "id": "b", "final_answer_correct": False, "label": 1},  # gold from item a
        {**good, "id": "c", "label": 2},  # label out of range
        {**good, "id": "d", "steps": ["x", ""]},  # empty step
        {**good, "id": "e", "problem": "Q", "final_answer_correct": False, "label": 0},  # no gold anywhere
        {**good, "id": "f", "problem": "R", "answer": "9", "final_answer_correct": False, "label": 0},
    ]
    path = tmp_path / "sub.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    items, bad = load_items(path)
    assert [i.id for i in items] == ["a", "b", "e", "f"]
    assert len(bad) == 2 and "'label' 2" in bad[0] and "step 1 is empty" in bad[1]
    usable, without, cov = with_gold_answers(items)
    assert (cov.erroneous, cov.erroneous_with_gold, cov.from_item, cov.from_same_problem) == (3, 2, 1, 2)
    assert {i.id: i.answer for i in usable} == {"a": "5", "b": "5", "f": "9"} and [i.id for i in without] == ["e"]
    (tmp_path / "list.json").write_text(json.dumps(lines[:2]))
    assert len(load_items(tmp_path / "list.json")[0]) == 2
    (tmp_path / "broken.json").write_text("{nope")
    with pytest.raises(ValueError, match="neither a JSON list nor JSON lines"):
        load_items(tmp_path / "broken.json")


# -- the judge ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("The first wrong step is \\boxed{3}.", 2),
        ("Step 2 is fine. \\boxed{Step 1}", 0),
        ("All good: \\boxed{none}", -1),
        ("\\boxed{-1}", -1),
        ("\\boxed{\\text{No error}}", -1),
        ("\\boxed{9}", None),  # out of range: no verdict, never clipped
        ("\\boxed{2, 3}", None),
        ("The first incorrect step is step 4.", 3),
        ("the first wrong step: none", -1),
        ("Step 2 looks odd. Step 3 too.", None),  # stray numbers are no verdict
        ("", None),
    ],
)
def test_judge_replies_are_parsed_without_guessing(reply: str, expected: int | None) -> None:
    assert parse_first_error(reply, 4) == expected


def test_judge_parsing_is_linear_on_garbage() -> None:
    for junk in ("\\boxed{" * 200_000, "first wrong step " * 100_000, "{" * 1_000_000):
        t0 = time.process_time()
        parse_first_error(junk, 5)
        assert time.process_time() - t0 < 0.05


def test_judge_prompt_numbers_steps_and_keeps_braces_in_the_problem() -> None:
    text = render_request(JudgeSpec().template, "Find {x} if x+1=3.", ["a", "b"])
    assert "Find {x} if x+1=3." in text and "Step 1: a\n\nStep 2: b" in text


def test_simulated_judge_accuracy_and_unparseable_rate() -> None:
    items, _ = load_items(LONG)
    for acc in (1.0, 0.5):
        judge = SimulatedJudge(SimulatedJudgeSpec(accuracy=acc), seed=1)
        replies = [asyncio.run(judge.first_error(i.problem, list(i.steps))) for i in items]
        right = sum(r.first_error == i.label for r, i in zip(replies, items))
        assert right == len(items) if acc == 1.0 else 0.25 * len(items) <= right <= 0.8 * len(items)
    judge = SimulatedJudge(SimulatedJudgeSpec(unparseable_rate=1.0))
    assert asyncio.run(judge.first_error(items[0].problem, list(items[0].steps))).first_error is None


def test_make_judge_shares_the_policy_engine_for_the_same_model() -> None:
    class FakeEngine:
        name = "m"

        async def generate_text(self, prompt, n, sampling):  # type: ignore[no-untyped-def]
            raise AssertionError

    policy = PolicySpec(backend="vllm", model="m")
    shared = make_judge(JudgeSpec(backend="vllm"), policy, policy=FakeEngine())
    assert getattr(shared, "owns_policy") is False
    own = make_judge(JudgeSpec(backend="vllm", model="other"), policy, policy=FakeEngine())
    assert getattr(own, "owns_policy") is True


# -- gold answers joined from the source datasets --------------------------------------------


def test_gold_answers_join_from_the_source_datasets_on_real_processbench(shared_data, capsys) -> None:  # type: ignore[no-untyped-def]
    from apsgen.cli.main import main
    from apsgen.eval.processbench import AnswerSource, load_answers

    pb = shared_data / "processbench"
    gsm8k_items = load_items(pb / "gsm8k.json")[0]
    alone = with_gold_answers(gsm8k_items)[2]
    assert alone.share_erroneous < 0.5  # ProcessBench has no gold answer: siblings cover few erroneous items
    joined = load_answers([AnswerSource(str(shared_data / "gsm8k_test.jsonl"))])
    usable, without, cov = with_gold_answers(gsm8k_items, joined)
    assert not without and cov.erroneous_with_gold == cov.erroneous == 207 and cov.from_answers == 400
    # each item gets its own question's final answer (GSM8K writes it after `####`)
    rows = [json.loads(line) for line in (shared_data / "gsm8k_test.jsonl").read_text().splitlines()]
    final = {" ".join(r["question"].split()): r["answer"].split("####")[-1].strip().replace(",", "") for r in rows}
    assert all(i.answer == final[" ".join(i.problem.split())] for i in usable)
    math = with_gold_answers(load_items(pb / "math.json")[0],
                             load_answers([AnswerSource(str(shared_data / "math500.jsonl"))]))[2]
    assert math.from_answers == 112 and math.share_erroneous < 0.5
    args = ["eval", "processbench", str(pb / "gsm8k.json"), str(pb / "math.json"), "--coverage",
            "--answers", str(shared_data / "gsm8k_test.jsonl"), "--answers", str(shared_data / "math500.jsonl")]
    assert main(args) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[3:]}
    assert rows["gsm8k"][1] == "207/207" and rows["gsm8k"][-1] == "given" and rows["math"][-1] == "withheld"
    assert main([*args[:4], "--coverage", "--answers", str(shared_data / "gsm8k_test.jsonl"),
                 "--answers-columns", "question,nope"]) == 2
    assert "no answer column 'nope'" in capsys.readouterr().err


def test_a_subset_mostly_without_gold_gets_no_f1_unless_asked(tmp_path: Path) -> None:
    items = json.loads(SHORT.read_text())
    erroneous = [it for it in items if it["label"] != -1 and not it["final_answer_correct"]]
    # Drop the correct solutions the gold answers were taken from, and give a source for two problems.
    path = tmp_path / "no_gold.json"
    path.write_text(json.dumps(erroneous))
    report = evaluate([str(path)], sim_spec())
    sub = report.subsets[0]
    assert sub.f1 is None and sub.n_items == 0 and "--allow-partial" in (sub.withheld or "")
    assert report.mean_f1 is None and "F1 withheld" in report.render()
    gold = {}
    for it in items:
        if it["final_answer_correct"]:
            gold.setdefault(it["problem"], it["steps"][-1])
    some = list(gold.items())[:2]
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"problem": "  " + q.upper(), "solution": s}) + "\n" for q, s in some))
    from apsgen.eval.processbench import AnswerSource

    partial = evaluate([str(path)], sim_spec(), answers=[AnswerSource(str(answers))], allow_partial=True)
    sub = partial.subsets[0]
    n = sum(it["problem"] in dict(some) for it in erroneous)
    assert sub.withheld is None and sub.n_items == n and sub.coverage.from_answers == n
    assert sub.n_without_answer == len(erroneous) - n and sub.f1 is not None
    assert "partial: gold answers for" in partial.render()


def test_sample_is_seeded_stratified_nested_and_free_of_file_order(shared_data) -> None:  # type: ignore[no-untyped-def]
    from apsgen.eval.processbench import select_items

    items = load_items(shared_data / "processbench" / "gsm8k.json")[0]
    assert all(it.label != -1 for it in select_items(items, limit=20))  # the file lists erroneous items first
    share = sum(it.label != -1 for it in items) / len(items)
    small, big = select_items(items, sample=20, seed=3), select_items(items, sample=60, seed=3)
    assert len(small) == 20 and len(big) == 60
    assert abs(sum(it.label != -1 for it in big) / 60 - share) <= 1 / 60
    assert {it.id for it in small} <= {it.id for it in big}  # a larger sample contains the smaller one
    assert [it.id for it in select_items(items[::-1], sample=20, seed=3)] == [it.id for it in small][::-1]
    assert {it.id for it in select_items(items, sample=20, seed=4)} != {it.id for it in small}
    assert select_items(items, sample=10 * len(items)) == items
