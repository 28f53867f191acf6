"""Reasoning policies: a thinking section before the answer, steps for long traces, reflections in
the labels and both export conventions; the reasoning world through the pipeline, and a
reasoning-mode job through the OpenAI-compatible backend (the world served over HTTP), killed and
resumed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from apsgen.config import Labelling, PromptSpec, parse_spec
from apsgen.paths import labelled_paths, result_rows, solution_paths
from apsgen.pipeline import Labeller, label_locally
from apsgen.policy.base import Sampling
from apsgen.policy.prompt import PromptBuilder
from apsgen.reasoning import answer_part, answer_start, part_of
from apsgen.runner.fingerprint import label_settings
from apsgen.search.steps import StepSplitter, opens_reflection
from apsgen.worlds import reasoning
from apsgen.worlds.server import split_prompt

REPO = Path(__file__).resolve().parents[1]


# -- the thinking section and the answer ---------------------------------------------------------

def test_the_answer_is_read_after_the_last_thinking_end_only():
    text = "<think>\nmaybe \\boxed{3}?\n</think>\n\nSo \\boxed{4}."
    assert answer_part(text, "</think>") == "\n\nSo \\boxed{4}."
    assert answer_part("<think>\nstill thinking \\boxed{3}", "</think>") == ""  # no answer while thinking
    assert answer_part("no thinking \\boxed{3}", None) == "no thinking \\boxed{3}"
    assert answer_start("a</think>b</think>c", "</think>") == len("a</think>b</think>")
    full = "<think>\nx\n\n</think>\n\nanswer"
    assert part_of(full, 0, "</think>") == "thinking"
    assert part_of(full, full.index("answer"), "</think>") == "answer"
    assert part_of(full, 0, None) is None


def test_reasoning_mode_sizes_the_defaults_and_keeps_what_the_spec_gives():
    base = {"name": "r", "dataset": {"path": "q.jsonl"}}
    on = parse_spec({**base, "reasoning": {"enabled": True}})
    assert on.sampling.max_tokens >= 8192 and on.policy.engine.max_model_len is None
    assert on.steps.mode == "sections" and on.policy.prompt.chat_template_kwargs == {"enable_thinking": True}
    assert on.labelling().thinking_end == "</think>"
    given = parse_spec({**base, "reasoning": {"enabled": True}, "sampling": {"max_tokens": 3000},
                        "steps": {"mode": "delimiter"}, "policy": {"prompt": {"chat_template_kwargs": {"enable_thinking": False}}}})
    assert given.sampling.max_tokens == 3000 and given.steps.mode == "delimiter"
    assert given.policy.prompt.chat_template_kwargs == {"enable_thinking": False}
    off = parse_spec(base)
    assert off.sampling.max_tokens == 1024 and off.labelling().thinking_end is None
    # Off, the settings that shape labels are as they were before the mode existed (old outputs resume).
    assert "reasoning" not in label_settings(off) and "chat_template_kwargs" not in label_settings(off)["policy"]["prompt"]
    assert label_settings(on)["reasoning"]["enabled"] is True


def test_the_chat_templates_thinking_switch_reaches_the_template():
    class Tokenizer:
        chat_template = "{{ messages }}"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt, **variables):
            return f"[{messages[-1]['content']}|think={variables.get('enable_thinking')}]"

    builder = PromptBuilder(PromptSpec(chat_template_kwargs={"enable_thinking": True}), Tokenizer())
    assert builder.render("Q?", "<think>\nso") == "[Q?|think=True]<think>\nso"
    plain = PromptBuilder(PromptSpec(), Tokenizer())
    assert plain.render("Q?", "") == "[Q?|think=None]"
    assert plain.hash != builder.hash


# -- steps for long traces -----------------------------------------------------------------------

def _trace(paragraphs: int) -> str:
    body = []
    for i in range(paragraphs):
        body.append(f"Wait, let me double-check step {i}." if i % 7 == 6 else f"Step {i}: some words of thinking here.")
    return "<think>\n" + "\n\n".join(body) + "\n</think>\n\nThe answer is \\boxed{4}."


def test_sections_merge_paragraphs_begin_at_reflections_and_end_thinking_at_its_marker():
    text = _trace(120)
    split = StepSplitter("sections", chunk_tokens=40, thinking_end="</think>")
    bounds = split.boundaries(text)
    steps = [text[a:b] for a, b in zip([0, *bounds], [*bounds, len(text)])]
    paragraphs = len(StepSplitter("delimiter", thinking_end="</think>").boundaries(text)) + 1
    assert 10 <= len(steps) < paragraphs / 3  # merged: far fewer steps than paragraphs
    assert steps[-1].strip() == "The answer is \\boxed{4}."  # the answer is a step of its own
    assert steps[-2].rstrip().endswith("</think>")
    # A reflection begins its section unless the section so far is short (under a quarter of a section).
    assert sum(opens_reflection(s) for s in steps) >= 5
    for step in steps:
        paras = step.split("\n\n")
        for i, para in enumerate(paras[1:], 1):
            if opens_reflection(para):
                assert len(" ".join(paras[:i]).split()) * 4 < 40, step
    # Only the tail after a prefix is split; every cut lies in it.
    assert all(b > 500 for b in split.boundaries(text, 500))


def test_reflection_markers():
    for yes in ("Wait, that's wrong.", "But wait, 3 + 4 is 7.", "Hmm, let me see.", "Let me double-check that.",
                "Actually, no.", "Alternatively, we could", "**Wait**, ..."):
        assert opens_reflection(yes), yes
    for no in ("So after day 2 we have 48.", "The waiter brings 3 plates.", "Let me compute 3 + 4."):
        assert not opens_reflection(no), no


@pytest.mark.parametrize("mode", ["sections", "delimiter", "tokens"])
def test_splitting_megabytes_of_garbage_is_linear(mode):
    split = StepSplitter(mode, chunk_tokens=64, thinking_end="</think>")
    junk = ("Wait " * 50 + "\n\n" + "x" * 300 + "</think>" + "\n\n") * 3000  # ~3 MB
    t0 = time.perf_counter()
    split.boundaries(junk)
    assert time.perf_counter() - t0 < 20


# -- the reasoning world through the pipeline: reflections and both conventions -------------------

def _labelled(n: int = 16, seed: int = 3, **steps):
    spec = reasoning.ReasoningWorldSpec(recover_mean=0.05, success_rate=(0.2, 0.6), reflect_rate=0.5)
    problems = reasoning.reasoning_problems(n, spec, seed)
    labelling = Labelling.model_validate({"search": {"k": 8, "max_searches": 12, "screen_samples": 16},
                                          "reasoning": {"enabled": True},
                                          "steps": {"mode": "sections", "per_solution": 16, **steps}})
    from apsgen.verify import Verifier

    with Verifier() as verifier:
        labeller = Labeller(reasoning.ReasoningWorldPolicy(spec, seed=seed), verifier, Sampling(max_tokens=640), seed)
        run = asyncio.run(label_locally(problems, labeller, labelling))
    return spec, problems, run.results


@pytest.fixture(scope="module")
def world_run():
    return _labelled()


def test_reasoning_rows_tell_thinking_from_answer_and_read_answers_after_it(world_run):
    spec, problems, results = world_run
    sections = {s.section for r in results for s in r.steps}
    assert sections == {"thinking", "answer"}
    for r in results:
        for s in r.steps:
            full = s.prefix + s.step_text
            assert (s.section == "answer") == ("</think>" in full[: s.char_start])
    # Rollouts cut by the budget are counted as truncated, never as wrong answers.
    assert sum(r.outcomes.get("truncated", 0) for r in results) > 0


def test_reflections_name_their_first_error_and_are_judged_well(world_run):
    spec, problems, results = world_run
    judged = right = 0
    for problem, r in zip(problems, results):
        by_id = {s.node_id: s for s in r.steps}
        for s in r.steps:
            if s.reflects_on is None:
                continue
            first = by_id[s.reflects_on]
            assert first.is_first_error
            assert (s.prefix + s.step_text).startswith(first.prefix + first.step_text)  # later on the same path
            assert s.verdict == "wrong" and s.reflection_verdict in ("correct", "wrong", "undecided")
            if s.reflection_verdict != "undecided":
                judged += 1
                right += (s.reflection_verdict == "correct") == reasoning.on_track(problem.question, s.prefix + s.step_text, spec)
    assert judged >= 10
    assert right / judged >= 0.85


def test_the_two_conventions(world_run):
    spec, problems, results = world_run
    corrected_paths = 0
    for problem, r in zip(problems, results):
        rows = result_rows(problem, r)
        first = labelled_paths(rows)
        for _, segments in first:  # stop at the first error: no + after a -
            labels = [good for _, good in segments]
            assert False not in labels[:-1]
        for path, segments in labelled_paths(rows, convention="corrected"):
            labels = [good for _, good in segments]
            if path.reflection is None:
                assert False not in labels[:-1]
                continue
            corrected_paths += 1
            # + ... + (the first error) - ... - (the reflection) + ... +: one span, corrected once.
            down = labels.index(False)
            up = labels.index(True, down)
            assert all(not g for g in labels[down:up]) and all(labels[up:])
            assert segments[down][0].is_first_error and segments[up][0].node_id == path.reflection
            # The span keeps every state: its text is the trace's, step by step.
            texts = "".join(seg.text for seg, _ in segments)
            assert problem.question not in texts and texts.startswith("<think>")
    assert corrected_paths >= 3
    # Without reflections the conventions agree.
    for problem, r in zip(problems, results):
        rows = [{**row, "reflects_on": None, "reflection_verdict": None} for row in result_rows(problem, r)]
        assert ([p.end_node for p in solution_paths(rows)] == [p.end_node for p in solution_paths(rows, convention="corrected")])


def test_the_worlds_truth_sees_fixes_and_false_retractions():
    spec = reasoning.ReasoningWorldSpec()
    q = reasoning.reasoning_problems(1, spec, 0)[0].question
    plan = reasoning.plan_for(q, spec)
    a0 = plan.ops[0][1]
    op = plan.ops[0][0]
    right = plan.values[0]
    wrong = right + 1
    head = "<think>\nOkay.\n\n"
    slip = head + f"So after day 1: {plan.start} {op} {a0} = {wrong} x .\n\n"
    assert reasoning.first_error_offset(q, slip, spec) is not None and not reasoning.on_track(q, slip, spec)
    fixed = slip + f"Wait, that's not right. {plan.start} {op} {a0} is {right}, not {wrong}. So Ada has {right} x .\n\n"
    assert reasoning.on_track(q, fixed, spec)
    assert reasoning.first_error_offset(q, fixed, spec) == reasoning.first_error_offset(q, slip, spec)
    good = head + f"So after day 1: {plan.start} {op} {a0} = {right} x .\n\n"
    assert reasoning.first_error_offset(q, good, spec) is None
    retract = good + f"Wait, that's wrong. I misread: it was 99, not {a0}. So {plan.start} {op} 99 = {right + 7} x .\n\n"
    assert reasoning.first_error_offset(q, retract, spec) > len(good)


# -- end to end: a reasoning-mode job through the OpenAI-compatible backend ----------------------

def test_the_server_reads_the_prompt_back():
    chatml = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1?<|im_end|>\n<|im_start|>assistant\n<think>\nso"
    assert split_prompt(chatml) == ("Q1?", "<think>\nso")
    assert split_prompt("S\n\nQuestion: Q2?\nAnswer: step") == ("Q2?", "step")
    with pytest.raises(ValueError, match="no user turn"):
        split_prompt("garbage")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def world_server(tmp_path):
    port = _free_port()
    log = tmp_path / "server.log"  # a file, not a pipe nobody reads: a full pipe would stall the server
    with log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "apsgen.worlds.server", "--world", "reasoning", "--port",
                                 str(port), "--model", "reasoner", "--seed", "4"], cwd=REPO, stdout=sink, stderr=sink)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).read()
            break
        except OSError:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the world server did not start"
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=30)


def _reasoning_job(base_url: str, data: Path, output: Path, model: str):
    return parse_spec({
        "name": "reasoning-e2e",
        "dataset": {"path": str(data)},
        "policy": {"backend": "openai", "model": model, "openai": {"base_url": base_url, "max_concurrency": 8},
                   "prompt": {"system": "Think, then answer in \\boxed{}."}},
        "reasoning": {"enabled": True},
        "sampling": {"max_tokens": 520},  # words, the world's tokens: cuts the longest traces
        "search": {"k": 4, "screen_samples": 8, "max_searches": 6},
        "runner": {"max_concurrent_trees": 2, "keep_rollouts": True, "shard_rows": 50},
        "output": str(output),
    })


@pytest.mark.slow
def test_a_reasoning_job_through_the_openai_backend_resumes_after_a_kill(world_server, tmp_path):
    from apsgen.models import is_prepared, model_dir
    from driver_support import _end_group, _ids_once, _start_driver, _wait_for_committed

    from apsgen.io.export import export
    from apsgen.io.store import OutputStore
    from apsgen.runner.driver import run_job

    if not is_prepared("smollm2-135m"):
        pytest.skip("demo model not prepared (apsgen models prepare smollm2-135m): its chat template renders the prompts")
    spec = reasoning.ReasoningWorldSpec()
    problems = reasoning.reasoning_problems(10, spec, 9)
    data = tmp_path / "questions.jsonl"
    data.write_text("".join(json.dumps({"question": p.question, "answer": p.answer}) + "\n" for p in problems))
    out = tmp_path / "out"
    job = _reasoning_job(world_server, data, out, str(model_dir("smollm2-135m")))
    proc = _start_driver(job)
    try:
        _wait_for_committed(out, proc, at_least=2, timeout_s=240)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        _end_group(proc)
    run_job(job, output=str(out), show_progress=False)
    ids = _ids_once(out)  # every problem once, steps and rollouts without duplicates
    assert sorted(ids) == sorted(p.id for p in problems)
    store = OutputStore(str(out))
    steps = store.read_steps().to_pylist()
    assert {s["section"] for s in steps} == {"thinking", "answer"} and {s["step_mode"] for s in steps} == {"sections"}
    rollouts = store.read_rollouts().to_pylist()
    for r in rollouts:  # the answer is kept apart from the thinking, and only an answer is graded
        if r["answer_start"] is None:
            assert r["outcome"] in ("truncated", "no_answer")
        else:
            assert r["text"][: r["answer_start"]].rstrip().endswith("</think>") or r["answer_start"] == 0
    assert any(r["finish_reason"] == "length" for r in rollouts)
    from apsgen.cli.main import main

    assert main(["explain", str(out), "--verify"]) == 0  # every label and reflection verdict replays
    from apsgen.io.stats import compute_stats

    stats = compute_stats(str(out))
    assert set(stats.sections) == {"thinking", "answer"} and stats.sections["thinking"] > stats.sections["answer"]
    import pyarrow.parquet as pq

    marked = {}
    for convention in ("first_error", "corrected"):
        report = export(str(out), ["stepwise"], str(tmp_path / convention), convention=convention)
        assert report.rows["stepwise"] > 0
        rows = [r for f in report.files["stepwise"] for r in pq.read_table(f).to_pylist()]
        for r in rows:  # the marks index the steps of the row
            assert r["first_error"] is None or not r["labels"][r["first_error"]]
            if r["reflection"] is not None:
                assert r["labels"][r["reflection"]] and r["reflection"] > r["first_error"]
        marked[convention] = [r for r in rows if r["reflection_verdict"] is not None]
    # Both conventions carry the reflection marks: the first-error paths say their error was retracted
    # (and how well), the corrected ones also where.
    assert marked["first_error"] and all(r["reflection"] is None for r in marked["first_error"])
    assert any(r["reflection"] is not None for r in marked["corrected"])
