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
    assert spec.steps.mode == "delimiter" and s.invalid_rollouts == "wrong"
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
    with pytest.raises(SpecError, match="steps.delimiter"):
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


def test_label_settings_have_sections_and_an_old_spec_is_migrated_naming_each_move(caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    old = {"name": "old", "dataset": {"path": "simulated"},
           "search": {"k": 4, "k_max": 16, "step_checks": False, "label_rule": "sequential", "calibration_questions": 0}}
    with caplog.at_level(logging.WARNING, logger="apsgen.config"):
        spec = parse_spec(old, "old.yaml")
    assert (spec.search.k, spec.label.k_max, spec.steps.checks, spec.calibration.questions) == (4, 16, False, 0)
    moved = caplog.text
    for move in ("search.k_max -> label.k_max", "search.step_checks -> steps.checks",
                 "search.label_rule -> label.rule", "search.calibration_questions -> calibration.questions"):
        assert move in moved
    # written both ways, the old key is refused rather than guessed
    with pytest.raises(SpecError, match="search.k_max moved to label.k_max, and both are set"):
        parse_spec({**old, "label": {"k_max": 8}})
    # --set on an old name is migrated too
    threshold = {**old, "search": {"k": 4, "label_rule": "threshold"}}
    assert parse_spec(threshold, overrides=["search.mc_threshold=0.2"]).label.mc_threshold == 0.2


def test_the_rule_is_a_tagged_union_with_its_own_settings() -> None:
    base = {"name": "x", "dataset": {"path": "simulated"}}
    assert parse_spec(base).label.rule == "sequential"
    assert parse_spec({**base, "label": {"rule": "paper"}}).label.rule == "paper"
    with pytest.raises(SpecError, match="unknown key 'label.k_max' .*not a setting of the paper rule"):
        parse_spec({**base, "label": {"rule": "paper", "k_max": 8}})
    with pytest.raises(SpecError, match="label.k_max 4 < search.k 8"):
        parse_spec({**base, "label": {"k_max": 4}})
