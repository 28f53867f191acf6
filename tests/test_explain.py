"""Replayable labels: every stored verdict is recomputed from the output alone (`apsgen explain`),
on a job run through Ray and on the story worlds' labels with their own-recovery probes and a
fitted calibration; a tampered label is caught; the chain that labelled a step is printed."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from driver_support import _spec
from search_support import BoxedVerifier

from apsgen.cli.main import main
from apsgen.config import Labelling
from apsgen.io.rows import Provenance, problem_row, step_rows
from apsgen.label.replay import ProblemReplay
from apsgen.pipeline import Labeller, label_locally
from apsgen.policy.base import Sampling
from apsgen.worlds import story

WHEN = datetime(2026, 12, 7, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def simulated_output(tmp_path_factory) -> Path:
    from apsgen.runner.driver import run_job

    out = tmp_path_factory.mktemp("explain") / "out"
    run_job(_spec(out, limit=40), show_progress=False)  # 40 questions: a calibrated job
    return out


def test_every_label_of_a_simulated_run_replays(simulated_output: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["explain", str(simulated_output), "--verify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mismatches"] == 0 and report["labels"] > 100
    assert report["by_basis"].get("rollouts", 0) > 0


def test_a_tampered_label_is_caught(simulated_output: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    copy = tmp_path / "copy"
    shutil.copytree(simulated_output, copy)
    shard = sorted((copy / "data").glob("*.parquet"))[0]
    table = pq.read_table(shard)
    verdicts = table.column("verdict").to_pylist()
    basis = table.column("verdict_basis").to_pylist()
    i = next(j for j, (v, b) in enumerate(zip(verdicts, basis)) if v == "correct" and b == "rollouts")
    verdicts[i] = "wrong"
    i_col = table.schema.get_field_index("verdict")
    pq.write_table(table.set_column(i_col, table.schema.field(i_col), pa.array(verdicts, pa.string())), shard)
    assert main(["explain", str(copy), "--verify"]) == 1
    out = capsys.readouterr()
    assert "1 differ" in out.out and "stored wrong" in out.err


def test_explain_prints_the_chain_that_labelled_a_step(simulated_output: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from apsgen.io.store import OutputStore

    steps = OutputStore(str(simulated_output)).read_steps().to_pylist()
    probed = next(r for r in steps if r["label_source"] == "rollouts" and r["reference_value"] is not None)
    assert main(["explain", str(simulated_output), probed["problem_id"], "--node", str(probed["node_id"])]) == 0
    out = capsys.readouterr().out
    for part in ("evidence:", "reference:", "hypotheses:", "score:", f"decision: {probed['verdict']}",
                 "recomputed: the same"):
        assert part in out, (part, out)
    first = next(r for r in steps if r["is_first_error"])
    assert main(["explain", str(simulated_output), first["problem_id"]]) == 0
    out = capsys.readouterr().out
    assert "located first error" in out and out.count("recomputed: the same") == sum(
        r["problem_id"] == first["problem_id"] for r in steps)
    assert main(["explain", str(simulated_output), "nope"]) == 2
    assert main(["explain", str(simulated_output), first["problem_id"], "--node", "999999"]) == 2


@pytest.mark.parametrize("announce", [1.0, 0.0])
def test_story_world_labels_replay_with_own_probes_and_a_fitted_calibration(announce: float) -> None:
    spec = story.StoryWorldSpec(recover_mean=0.2, success_rate=(0.3, 0.8), max_steps=7, announce_recovery=announce)
    problems = story.story_problems(24, spec, seed=7)
    search = Labelling.of(max_searches=6, screen_samples=8, calibration_questions=6, calibration_searches=3)
    labeller = Labeller(story.StoryWorldPolicy(spec, seed=7), BoxedVerifier(), Sampling(), 7)
    run = asyncio.run(label_locally(problems, labeller, search))
    prov = Provenance("m", None, "h", "{}", json.dumps(search.model_dump(), sort_keys=True), "v", "0", "f" * 16)
    bases, scored, own = set(), 0, 0
    for problem, result in zip(problems, run.results, strict=True):
        assert result is not None
        rows = step_rows(problem, result, prov, WHEN)
        replay = ProblemReplay(problem_row(problem, result, "f" * 16, WHEN), rows, run.calibration)
        for node in replay.steps:
            r = replay.replay(node)
            assert r.matches, (problem.id, node, r.stored, r.replayed, r.chain)
            bases.add(r.stored.basis)
            scored += r.stored.score is not None
        own += bool(replay.own and replay.own.graded())
    assert run.calibration is not None and run.calibration.source == "calibrated"
    assert {"rollouts", "arithmetic"} <= bases and scored and own
