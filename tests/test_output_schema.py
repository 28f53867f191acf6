"""Every shard a real run writes matches the canonical schemas in schemas/, and each field is documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from apsgen.config import parse_spec
from apsgen.io.schema import SCHEMA_DIR, problem_schema, step_schema
from apsgen.io.store import OutputStore

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> str:
    from apsgen.runner.driver import run_job

    spec = parse_spec({
        "name": "schema-check",
        "dataset": {"path": "simulated", "limit": 5},
        "policy": {"backend": "simulated", "model": "simulated",
                   "simulated": {"min_steps": 3, "max_steps": 6, "success_rate": [0.4, 0.9]}},
        "search": {"k": 4, "screen_samples": 8, "max_searches": 4},
        "runner": {"shard_rows": 20},  # several shards, so every one is checked
    })
    out = str(tmp_path_factory.mktemp("schema") / "out")
    run_job(spec, output=out, show_progress=False)
    return out


def _shards(out: str, sub: str) -> list[Path]:
    return sorted((Path(out) / sub).glob("part-*.parquet"))


def test_writer_reads_the_schema_files_not_a_copy():
    assert SCHEMA_DIR.resolve() == (REPO / "schemas").resolve()
    assert step_schema().metadata[b"schema"] == b"apsgen.steps"


def test_every_step_shard_matches_the_schema(output):
    shards = _shards(output, "data")
    assert shards
    for path in shards:
        schema = pq.read_schema(path)
        assert schema.equals(step_schema(), check_metadata=False), path
        assert [f.nullable for f in schema] == [f.nullable for f in step_schema()], path
        table = pq.read_table(path)
        for field in step_schema():  # a non-nullable field is never null in practice either
            if not field.nullable:
                assert table.column(field.name).null_count == 0, (path, field.name)


def test_every_problem_shard_matches_the_schema(output):
    shards = _shards(output, "problems")
    assert len(shards) == len(_shards(output, "data"))
    for path in shards:
        assert pq.read_schema(path).equals(problem_schema(), check_metadata=False), path


def test_rows_are_label_facts(output):
    steps = OutputStore(output).read_steps().to_pylist()
    assert steps
    for r in steps:
        assert r["n_correct"] <= r["n_rollouts"] or r["label_source"] == "correct_solution"
        assert r["char_end"] == len(r["prefix"]) + len(r["step_text"]) and r["char_start"] == len(r["prefix"])
        if r["mc_value"] is not None and r["label_source"] == "rollouts":
            assert r["mc_value"] == pytest.approx(r["n_correct"] / r["n_rollouts"])
        json.loads(r["sampling"]) and json.loads(r["search_params"])


@pytest.mark.parametrize("name", ["steps", "problems", "rollouts"])
def test_every_field_is_documented(name):
    fields = [f["name"] for f in json.loads((REPO / "schemas" / f"{name}.schema.json").read_text())["fields"]]
    readme = (REPO / "schemas" / "README.md").read_text()
    section = readme.split(f"## {name} (")[1].split("\n## ")[0]
    documented = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M)
    assert documented == fields


def test_an_output_written_before_a_rename_reads_compacts_and_counts_the_same(output, tmp_path):
    """Version 3 problem shards call the verifier outcomes `verdicts`: readers and rewriters take them."""
    import shutil

    from apsgen.io.stats import compute_stats

    old = tmp_path / "old"
    shutil.copytree(output, old)
    for path in _shards(str(old), "problems"):
        table = pq.read_table(path)
        pq.write_table(table.rename_columns(["verdicts" if n == "outcomes" else n for n in table.column_names]), path)
    assert compute_stats(str(old)).verifier_outcomes == compute_stats(output).verifier_outcomes
    store = OutputStore(str(old))
    assert store.read_problem_columns(["problem_id", "outcomes"]).column_names == ["problem_id", "outcomes"]
    from apsgen.hub.folder import build_hub_folder

    folder = build_hub_folder(str(old), tmp_path / "hub", formats=[])  # rewrites the problems
    written = list((folder.path / "data" / "problems").glob("*.parquet"))
    assert written and all(pq.read_schema(p).names == problem_schema().names for p in written)
