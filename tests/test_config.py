"""The job spec: paper defaults, overrides, clear errors, and the exported JSON Schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from apsgen.config import JobSpec, SpecError, load_spec, parse_spec, schema_text
from tests.conftest import REPO


def test_defaults_are_the_papers():
    spec = parse_spec({"name": "x", "dataset": {"path": "d.jsonl"}})
    s = spec.search
    assert (s.alpha, s.beta, s.length_scale, s.c_puct, s.k, s.max_searches, s.screen_samples) == (
        0.5, 0.9, 500, 0.125, 8, 100, 32,
    )
    assert s.step_mode == "delimiter" and s.invalid_rollouts == "wrong"
    assert spec.output_dir() == "out/x"


def test_overrides_are_typed_and_nested():
    spec = parse_spec(
        {"name": "x", "dataset": {"path": "d.jsonl"}},
        overrides=["search.k=4", "sampling.stop=[\"\\n\\n\\n\"]", "policy.engine.dtype=float32", "dataset.limit=3"],
    )
    assert spec.search.k == 4 and spec.dataset.limit == 3
    assert spec.sampling.stop == ["\n\n\n"] and spec.policy.engine.dtype == "float32"


def test_unknown_key_names_key_value_and_file(tmp_path: Path):
    f = tmp_path / "job.yaml"
    f.write_text("name: x\ndataset: {path: d.jsonl}\nsearch: {kk: 4}\n")
    with pytest.raises(SpecError) as e:
        load_spec(f)
    msg = str(e.value)
    assert str(f) in msg and "search.kk" in msg and "4" in msg


def test_wrong_type_names_key_value_and_file(tmp_path: Path):
    f = tmp_path / "job.yaml"
    f.write_text("name: x\ndataset: {path: d.jsonl}\nsearch: {alpha: lots}\n")
    with pytest.raises(SpecError) as e:
        load_spec(f)
    msg = str(e.value)
    assert str(f) in msg and "search.alpha" in msg and "'lots'" in msg


def test_bad_override_and_missing_file(tmp_path: Path):
    with pytest.raises(SpecError, match="KEY=VALUE"):
        parse_spec({"name": "x", "dataset": {"path": "d"}}, overrides=["search.k"])
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="step_delimiter"):
        parse_spec({"name": "x", "dataset": {"path": "d"}, "search": {"step_delimiter": "("}})


def _is_job_spec(path: Path) -> bool:
    """jobs/ also holds Kubernetes manifests (KubeRay schedules): those are not job specs."""
    import yaml

    first = next(yaml.safe_load_all(path.read_text()), None)
    return isinstance(first, dict) and "apiVersion" not in first


def test_every_shipped_job_validates():
    jobs = [j for j in sorted((REPO / "jobs").glob("*.yaml")) if _is_job_spec(j)]
    assert {"demo.yaml", "simulated.yaml"} <= {j.name for j in jobs}
    for job in jobs:
        assert isinstance(load_spec(job), JobSpec)


def test_json_schema_file_is_fresh():
    current = (REPO / "schemas" / "job.schema.json").read_text()
    assert current == schema_text(), "schemas/job.schema.json is stale: run `apsgen schema --write`"
