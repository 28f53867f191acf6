"""Rollouts kept on request (`runner.keep_rollouts`): every completion in its own table, committed
with its problem, compacted with it, counted by stats, and re-graded by `apsgen regrade`. A job run
with the simulated policy through Ray, as a user runs one."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from driver_support import _ids_once, _spec

from apsgen.cli.main import main
from apsgen.io.compact import compact_output
from apsgen.io.stats import compute_stats
from apsgen.io.store import OutputStore


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    from apsgen.runner.driver import run_job

    out = tmp_path_factory.mktemp("kept") / "out"
    # Two runs (the second resumes and adds 4 problems), so the output has several shard pairs
    # however the results were batched, and compaction has work.
    for limit in (4, 8):
        run_job(_spec(out, limit=limit, keep_rollouts=True), output=str(out), show_progress=False)
    return out


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_every_completion_is_kept_once_with_its_prefix_outcome_and_answer(kept):
    store = OutputStore(str(kept))
    _ids_once(kept)  # each problem's rollouts once, as many as its row says it drew
    rows = store.read_rollouts().to_pylist()
    problems = {p["problem_id"]: p for p in store.read_problems().to_pylist()}
    steps = {(s["problem_id"], s["node_id"]): s for s in store.read_steps().to_pylist()}
    assert rows and {r["finish_reason"] for r in rows} <= {"stop", "length"}
    for r in rows:
        assert r["job_fingerprint"] == store.read_manifest().fingerprint
        if r["node_id"] != 0 and (r["problem_id"], r["node_id"]) in steps:  # it continued a stored state
            assert steps[(r["problem_id"], r["node_id"])]["prefix"] + steps[(r["problem_id"], r["node_id"])]["step_text"] == r["prefix"]
        if r["outcome"] == "correct":
            assert r["answer"] is not None
    # A stored state's evidence is the kept rollouts that continued it.
    for (pid, node), s in steps.items():
        if s["label_source"] == "rollouts":
            drawn = [r for r in rows if r["problem_id"] == pid and r["node_id"] == node]
            assert len(drawn) == s["n_rollouts"] and sum(r["outcome"] == "correct" for r in drawn) == s["n_correct"]
    assert sum(p["n_rollouts"] for p in problems.values()) == len(rows)
    stats = compute_stats(str(kept))
    assert stats.kept_rollouts == len(rows) and stats.kept_rollout_bytes > 0
    assert "rollouts table" in stats.render()


def test_compaction_keeps_every_rollout_once(kept, tmp_path):
    out = _copy(kept, tmp_path / "out")
    before = OutputStore(str(out)).read_rollouts().sort_by([("problem_id", "ascending"), ("rollout_id", "ascending")])
    assert len(OutputStore(str(out)).rollout_shards()) > 1
    compact_output(str(out))
    store = OutputStore(str(out))
    after = store.read_rollouts().sort_by([("problem_id", "ascending"), ("rollout_id", "ascending")])
    assert len(store.rollout_shards()) == 1 and after.equals(before)


def test_regrade_reports_nothing_when_the_verifier_agrees_and_each_change_when_it_does_not(kept, tmp_path, capsys):
    assert main(["regrade", str(kept)]) == 0
    assert "every one the same" in capsys.readouterr().out

    # The same output as an older verifier might have graded it: one right answer called wrong.
    out = _copy(kept, tmp_path / "out")
    store = OutputStore(str(out))
    steps = {(s["problem_id"], s["node_id"]): s for s in store.read_steps().to_pylist() if s["label_source"] == "rollouts"}
    for path in store.rollout_shards():
        table = pq.read_table(path)
        rows = table.to_pylist()
        hit = next((i for i, r in enumerate(rows) if r["outcome"] == "correct" and (r["problem_id"], r["node_id"]) in steps), None)
        if hit is not None:
            rows[hit]["outcome"] = "wrong"
            pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
            changed = rows[hit]
            break
    else:
        pytest.skip("no right answer at a stored state in this seed")
    assert main(["regrade", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["changed"] == {"wrong -> correct": 1} and report["states_changed"] == 1
    assert report["examples"][0]["problem_id"] == changed["problem_id"]
    assert report["rollouts"] == OutputStore(str(kept)).read_rollouts(["problem_id"]).num_rows


def test_regrade_refuses_rollouts_from_another_job_and_an_output_without_any(kept, tmp_path, capsys):
    out = _copy(kept, tmp_path / "out")
    path = OutputStore(str(out)).rollout_shards()[0]
    table = pq.read_table(path)
    column = table.schema.get_field_index("job_fingerprint")
    pq.write_table(table.set_column(column, table.schema.field(column),
                                    pc.if_else(pc.equal(pc.cast(pa.array(range(table.num_rows)), pa.int64()), 0),
                                               "0123456789abcdef", table.column(column))), path)
    assert main(["regrade", str(out)]) == 2
    err = capsys.readouterr().err
    assert path in err and "job_fingerprint" in err and "0123456789abcdef" in err

    plain = tmp_path / "plain"
    _copy(kept, plain)
    import shutil

    shutil.rmtree(plain / "rollouts")
    assert main(["regrade", str(plain)]) == 2
    assert "keep_rollouts" in capsys.readouterr().err


def test_keeping_rollouts_is_part_of_the_fingerprint(tmp_path):
    from apsgen.runner.fingerprint import fingerprint

    assert fingerprint(_spec(tmp_path, keep_rollouts=True)) != fingerprint(_spec(tmp_path))
