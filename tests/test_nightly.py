"""Nightly builds: build, add problems to the source, build again: only the new ones are searched,
each build holds its own problems, the combined view holds every problem once, a re-run adds nothing."""

from __future__ import annotations

import json

import pytest

from apsgen.config import SimulatedSpec, parse_spec
from apsgen.io.store import OutputStore
from apsgen.nightly import NightlyError, read_ledger, run_nightly
from apsgen.worlds.chain import simulated_problems

PROBLEMS = simulated_problems(n=6, spec=SimulatedSpec(min_steps=3, max_steps=5), seed=7)


def write_source(path, problems):
    path.write_text("".join(json.dumps({"question": p.question, "answer": p.answer}) + "\n" for p in problems))


def make_spec(source, root, repo_id=None):
    return parse_spec({
        "name": "nightly-test",
        "dataset": {"path": str(source), "answer_format": "plain"},
        "policy": {"backend": "simulated", "model": "simulated",
                   "simulated": {"min_steps": 3, "max_steps": 5, "success_rate": [0.5, 0.9]}},
        "search": {"k": 4, "screen_samples": 8, "max_searches": 4},
        "runner": {"max_concurrent_trees": 8},
        "hub": {"repo_id": repo_id},
        "output": str(root),
    })


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """Night 1 on four problems, the same night again, then night 2 after two were added."""
    tmp = tmp_path_factory.mktemp("nightly")
    source, root = tmp / "source.jsonl", tmp / "out"
    pushes: list[tuple] = []

    def pusher(output, repo_id, **kw):
        pushes.append((output, repo_id, kw["tag"]))

    write_source(source, PROBLEMS[:4])
    spec = make_spec(source, root, repo_id="org/nightly")
    first = run_nightly(spec, date="2026-03-01", pusher=pusher)
    again = run_nightly(spec, date="2026-03-01", pusher=pusher)
    write_source(source, PROBLEMS)
    second = run_nightly(spec, date="2026-03-02", pusher=pusher)
    return {"root": str(root), "spec": spec, "first": first, "again": again, "second": second, "pushes": pushes}


def ids(uri):
    return OutputStore(uri).read_problems().column("problem_id").to_pylist()


def test_first_build_searches_every_problem(nights):
    first = nights["first"]
    assert first.new_problems == 4 and first.already_done == 0
    assert sorted(ids(first.build_dir)) == sorted(p.id for p in PROBLEMS[:4])


def test_same_night_twice_adds_nothing(nights):
    again = nights["again"]
    assert again.summary.already_done == 4 and again.summary.searched == 0
    assert again.new_problems == 4  # the same build, unchanged
    assert sorted(ids(again.build_dir)) == sorted(p.id for p in PROBLEMS[:4])


def test_second_build_searches_only_new_problems(nights):
    second = nights["second"]
    assert second.already_done == 4
    assert second.summary.searched + sum(second.summary.skipped.values()) == 2
    assert sorted(ids(second.build_dir)) == sorted(p.id for p in PROBLEMS[4:])
    # Each build's step rows belong to its own problems only.
    steps = OutputStore(second.build_dir).read_steps().column("problem_id").to_pylist()
    assert set(steps) <= {p.id for p in PROBLEMS[4:]}


def test_combined_view_holds_each_problem_once(nights):
    combined = ids(nights["root"])
    assert len(combined) == len(set(combined)) == 6
    assert set(combined) == {p.id for p in PROBLEMS}
    ledger = read_ledger(OutputStore(nights["root"]))
    assert [(b.date, b.problems) for b in ledger] == [("2026-03-01", 4), ("2026-03-02", 2)]


def test_each_build_is_pushed_with_its_tag(nights):
    assert [p[2] for p in nights["pushes"]] == ["build-20260301", "build-20260301", "build-20260302"]
    assert {p[1] for p in nights["pushes"]} == {"org/nightly"}
    assert ledger_tags(nights["root"]) == ["build-20260301", "build-20260302"]


def ledger_tags(root):
    return [b.pushed for b in read_ledger(OutputStore(root))]


def test_builds_only_move_forward(nights):
    with pytest.raises(NightlyError, match="older than the latest build 2026-03-02"):
        run_nightly(nights["spec"], date="2026-02-28", push=False)
    with pytest.raises(NightlyError, match="'yesterday' is not a date"):
        run_nightly(nights["spec"], date="yesterday", push=False)


def test_shipped_schedules_parse_and_name_the_nightly_job():
    from pathlib import Path

    import yaml

    from apsgen.config import load_spec

    jobs = Path(__file__).resolve().parents[1] / "jobs"
    docs = list(yaml.safe_load_all((jobs / "nightly.kuberay.yaml").read_text()))
    kinds = [d["kind"] for d in docs]
    assert {"ConfigMap", "CronJob"} <= set(kinds)
    rayjob = yaml.safe_load(docs[kinds.index("ConfigMap")]["data"]["rayjob.yaml"])
    assert rayjob["apiVersion"] == "ray.io/v1" and rayjob["kind"] == "RayJob"
    assert rayjob["spec"]["entrypoint"].startswith("apsgen nightly ")
    assert rayjob["spec"]["shutdownAfterJobFinishes"] is True
    assert docs[kinds.index("CronJob")]["spec"]["concurrencyPolicy"] == "Forbid"
    cron = [line for line in (jobs / "nightly.crontab").read_text().splitlines()
            if line.strip() and not line.startswith("#") and "=" not in line.split()[0]]
    assert len(cron) == 1 and "apsgen submit --nightly jobs/nightly.yaml" in cron[0]
    assert load_spec(jobs / "nightly.yaml").name == "nightly-simulated"
