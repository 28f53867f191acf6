"""End to end on the real engine: `apsgen run` semantics with SmolLM2 on vLLM's CPU build, inside
an embedded Ray, verified answers, Parquet rows with MC values and counts."""

from __future__ import annotations

import json

import pyarrow.dataset as pads
import pytest

from apsgen.config import load_spec
from apsgen.io.schema import problem_schema, step_schema
from apsgen.models import is_prepared
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.engine]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    if not is_prepared("smollm2-135m"):
        pytest.fail("the demo model is not prepared: run `apsgen models prepare smollm2-135m` (make test does)")
    from apsgen.runner.driver import run_job

    out = tmp_path_factory.mktemp("demo-out")
    spec = load_spec(
        REPO / "jobs" / "demo.yaml",
        # Six problems that the demo model sometimes solves, so both screening outcomes occur.
        overrides=["dataset.limit=6", "search.max_searches=2", "sampling.max_tokens=96"],
    )
    summary = run_job(spec, output=str(out), show_progress=False)
    return spec, summary, out


def test_engine_run_writes_labelled_parquet(demo_run):
    spec, summary, out = demo_run
    assert summary.total_problems == 6 and not summary.failed
    assert summary.searched + sum(summary.skipped.values()) == 6
    problems = pads.dataset(out / "problems").to_table()
    assert problems.schema.equals(problem_schema(), check_metadata=False)
    assert problems.num_rows == 6 and len(set(problems.column("problem_id").to_pylist())) == 6
    # every rollout was verified: the per-problem verdict counts add up to the rollouts
    for row in problems.to_pylist():
        assert sum(json.loads(row["outcomes"]).values()) == row["n_rollouts"] > 0
    steps = pads.dataset(out / "data").to_table()
    assert steps.schema.equals(step_schema(), check_metadata=False)
    rows = steps.to_pylist()
    if summary.searched:
        assert rows, "searched problems must leave annotated steps"
    for r in rows:
        assert r["policy_model"].startswith("HuggingFaceTB/SmolLM2-135M-Instruct")
        assert r["mc_value"] is None or 0.0 <= r["mc_value"] <= 1.0
        if r["label_source"] == "rollouts":
            # k first, then top-ups (one request each) up to k_max when the label rule asked for more
            assert spec.search.k <= r["n_rollouts"] <= spec.label.k_max
            assert r["verdict"] in ("correct", "wrong", "undecided")
            assert r["mc_value"] == pytest.approx(r["n_correct"] / r["n_rollouts"])
        assert (r["prefix"] + r["step_text"])[r["char_start"]:r["char_end"]] == r["step_text"]
    # the whole tree is stored; the summary counts the states that carry a label
    assert summary.steps == sum(r["label_source"] != "unestimated" for r in rows)


def test_rerun_resumes_without_searching_again(demo_run):
    from apsgen.runner.driver import run_job

    spec, _, out = demo_run
    again = run_job(spec, output=str(out), show_progress=False)
    assert again.already_done == 6 and again.searched == 0 and again.rollouts == 0
    assert pads.dataset(out / "problems").to_table().num_rows == 6


def test_every_label_of_the_engine_run_replays(demo_run, capsys):
    # Real model text, real rollouts: every stored verdict is recomputed from the output alone.
    from apsgen.cli.main import main

    _, _, out = demo_run
    assert main(["explain", str(out), "--verify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mismatches"] == 0 and report["labels"] > 0
