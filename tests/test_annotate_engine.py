"""Annotate mode and the LLM judge on the real engine: `apsgen run` semantics with SmolLM2 on
vLLM's CPU build inside an embedded Ray, labelling given solutions, with the same model (on the
same engine) as the judge."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from apsgen.config import load_spec
from apsgen.models import is_prepared
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.engine]

GIVEN = [
    ("Sara has 12 stickers and her friend gives her 7 more. How many stickers does Sara have now?", "19",
     ["Sara starts with 12 stickers.", "Her friend gives her 7 more, so she has 12 + 7 = 19 stickers.",
      "The answer is \\boxed{19}."]),
    ("Tom had 25 marbles. He gave 9 marbles to his sister. How many marbles does Tom have left?", "16",
     ["Tom starts with 25 marbles.", "He gives away 9, so he has 25 + 9 = 34 marbles left.",
      "The answer is \\boxed{34}."]),
    ("There are 4 boxes with 8 pencils in each box. How many pencils are there in total?", "32",
     ["There are 4 boxes.", "Each box has 8 pencils, so there are 4 \\times 8 = 32 pencils.",
      "The answer is \\boxed{32}."]),
]


def test_annotate_with_the_demo_model_as_completer_and_judge(tmp_path: Path) -> None:
    if not is_prepared("smollm2-135m"):
        pytest.fail("the demo model is not prepared: run `apsgen models prepare smollm2-135m` (make test does)")
    from apsgen.runner.driver import run_job

    data = tmp_path / "given.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a, "steps": s}) + "\n" for q, a, s in GIVEN))
    spec = load_spec(
        REPO / "jobs" / "demo.yaml",
        overrides=[
            f"dataset.path={data}", "dataset.steps_column=steps", "search.mode=annotate",
            "search.screen_samples=8", "sampling.max_tokens=96",
            "judge.backend=vllm", "judge.max_tokens=48",  # the policy's model: judged on its engine
        ],
    )
    out = tmp_path / "out"
    summary = run_job(spec, output=str(out), show_progress=False)
    assert summary.total_problems == 3 and not summary.failed
    problems = pq.read_table(out / "problems").to_pylist()
    assert {p["solution_source"] for p in problems} == {"given"}
    assert {p["solution_outcome"] for p in problems} == {"correct", "wrong"}
    searched = [p for p in problems if p["status"] == "searched"]
    assert searched, "the demo model solves these questions sometimes, so some solution gets labelled"
    for p in searched:
        assert p["stop_reason"] in ("located", "no_error", "undecided", "rollout_budget")
        assert p["n_judged_paths"] >= (1 if p["stop_reason"] in ("located", "no_error") else 0)
    steps = pq.read_table(out / "data").to_pylist()
    texts = {r["step_text"].strip() for r in steps}
    assert texts <= {s for _, _, ss in GIVEN for s in ss}  # only the given steps are labelled
    judged = [r for r in steps if r["judge_outcome"] is not None]
    assert len(judged) == sum(p["n_judged_paths"] for p in problems)
    for r in judged:  # a 135M judge rarely answers in form: whatever it says is counted, never guessed
        assert r["judge_outcome"] in ("agree", "disagree", "unparseable")
        assert (r["judge_first_error"] is None) == (r["judge_outcome"] == "unparseable")
