"""Every Hub folder `push` builds loads with `datasets.load_dataset(DIR, CONFIG)` for every config its
card declares: an output whose first part is all skipped (the demo's case), a killed and resumed
output, and a folder with every config. Runs the simulated policy through the real pipeline."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import yaml
from known_output import make_output, problem
from driver_support import _end_group, _ids_once, _spec, _start_driver, _wait_for_committed

from apsgen.cli.main import main
from apsgen.config import SimulatedSpec
from apsgen.hub.folder import build_hub_folder
from apsgen.io.store import OutputStore
from apsgen.worlds.chain import simulated_problems


def load_every_config(folder: Path) -> dict[str, int]:
    """Rows per config, loading each config the card declares; no data file may be empty."""
    for f in (folder / "data").rglob("*.parquet"):
        assert pq.ParquetFile(f).metadata.num_rows > 0, f"{f} has no rows"
    meta = yaml.safe_load((folder / "README.md").read_text().split("---")[1])
    names = [c["config_name"] for c in meta["configs"]]
    assert datasets.get_dataset_config_names(str(folder)) == names
    # A cache of its own: datasets may reuse the cached copy of another folder of the same name.
    cache = str(folder) + "-cache"
    return {name: datasets.load_dataset(str(folder), name, split="train", cache_dir=cache).num_rows
            for name in names}


def _write_questions(path: Path, problems, *, wrong_gold: bool) -> str:
    with path.open("w") as f:
        for p in problems:
            f.write(json.dumps({"question": p.question, "answer": "-987654321" if wrong_gold else p.answer}) + "\n")
    return str(path)


def test_output_whose_first_part_is_all_skipped_loads(tmp_path):
    from apsgen.runner.driver import run_job

    out = tmp_path / "out"
    sim = SimulatedSpec(min_steps=3, max_steps=6, success_rate=(0.5, 0.9))
    problems = simulated_problems(10, sim, 0)
    # First run: gold answers no sample can reach, so every problem is skipped (all_wrong) and
    # part 0 holds no step row, as in `make demo`.
    skipped = _write_questions(tmp_path / "skipped.jsonl", problems[:4], wrong_gold=True)
    run_job(_spec(out, dataset={"path": skipped}), output=str(out), show_progress=False)
    store = OutputStore(str(out))
    first = store.committed_pairs()[0]
    assert pq.ParquetFile(first[1]).metadata.num_rows == 0
    good = _write_questions(tmp_path / "good.jsonl", problems[4:], wrong_gold=False)
    run_job(_spec(out, dataset={"path": good}), output=str(out), show_progress=False)

    folder = tmp_path / "hub"
    assert main(["push", str(out), "--repo-id", "org/name", "--dry-run", str(folder)]) == 0
    rows = load_every_config(folder)
    assert rows["problems"] == 10 and rows["steps"] == store.read_steps().num_rows > 0
    assert {"math-aps", "math-shepherd", "qwen-prm"} <= set(rows)


def test_only_skipped_problems_give_a_loadable_folder_without_empty_configs(tmp_path):
    out = make_output(tmp_path / "out", steps=[], problems=[
        {**problem("s1"), "status": "skipped", "skip_reason": "all_correct"}])
    folder = build_hub_folder(out, tmp_path / "hub", repo_id="org/name")
    assert folder.configs == ["problems"] and "steps" in folder.empty_configs
    assert load_every_config(folder.path) == {"problems": 1}
    assert datasets.load_dataset(str(folder.path), split="train", cache_dir=str(tmp_path / "c")).num_rows == 1
    assert "no rows yet" in (folder.path / "README.md").read_text()


def test_killed_and_resumed_output_loads(tmp_path):
    from apsgen.runner.driver import run_job

    out = tmp_path / "out"
    spec = _spec(out, limit=16, latency_s=0.05, trees=4, keep_rollouts=True)
    proc = _start_driver(spec)
    try:
        _wait_for_committed(out, proc, at_least=3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        _end_group(proc)
    run_job(spec, output=str(out), show_progress=False)
    store = OutputStore(str(out))
    pairs = len(store.committed_pairs())
    # The kept rollouts too: every problem's, each once, though the driver was killed mid-run.
    assert sorted(_ids_once(out)) == sorted(p.id for p in simulated_problems(16, SimulatedSpec(
        min_steps=3, max_steps=6, success_rate=(0.5, 0.9)), 0))
    folder = build_hub_folder(str(out), tmp_path / "hub", repo_id="org/name")
    rows = load_every_config(folder.path)
    assert rows["problems"] == 16 and rows["steps"] == store.read_steps().num_rows
    assert "rollouts" in folder.configs and rows["rollouts"] == store.read_rollouts(["problem_id"]).num_rows
    assert rows["rollouts"] == sum(store.read_problem_columns(["n_rollouts"]).column(0).to_pylist())
    # However many parts the runs committed, each config is one file at this size.
    assert pairs > 1
    assert all(len(list((folder.path / "data" / c).glob("*.parquet"))) == 1 for c in folder.configs)
    # Built twice, the folder is byte for byte the same: a re-push uploads nothing new.
    again = build_hub_folder(str(out), tmp_path / "hub2", repo_id="org/name")
    assert _digests(folder.path) == _digests(again.path)


def _digests(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in (root / "data").rglob("*.parquet")}


def test_folder_with_every_config_loads(tmp_path):
    out = make_output(tmp_path / "out")
    folder = build_hub_folder(out, tmp_path / "hub", repo_id="org/name")
    rows = load_every_config(folder.path)
    assert set(rows) == {"steps", "problems", "math-aps", "math-shepherd", "stepwise", "qwen-prm"}
    assert all(n > 0 for n in rows.values())
