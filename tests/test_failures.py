"""Failures and resume, with the simulated policy through Ray: a killed worker, a killed driver,
a stopped driver, and an application error on one problem."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from apsgen.config import SimulatedSpec
from apsgen.io.store import OutputStore

from driver_support import _end_group, _ids_once, _spec, _start_driver, _wait_for_committed, on_result


def test_killed_worker_is_replaced_and_every_problem_lands_once(tmp_path, monkeypatch):
    import ray

    from apsgen.runner import pool as pool_module
    from apsgen.runner.driver import run_job

    pools = []
    original = pool_module.WorkerPool.__init__

    def record(self, *a, **kw):
        original(self, *a, **kw)
        pools.append(self)

    monkeypatch.setattr(pool_module.WorkerPool, "__init__", record)
    killed = []

    def kill_once(problem, result):
        if not killed:
            killed.append(problem.id)
            ray.kill(pools[0].actors[0])  # the worker dies with searches in flight

    out = tmp_path / "out"
    summary = run_job(_spec(out, latency_s=0.02, workers=2), output=str(out), show_progress=False, observer=on_result(kill_once))
    assert killed and summary.worker_restarts >= 1
    assert not summary.failed
    assert sorted(_ids_once(out)) == sorted(p.id for p in _problems(24))


def _problems(n: int):
    from apsgen.worlds.chain import simulated_problems

    return simulated_problems(n, SimulatedSpec(min_steps=3, max_steps=6, success_rate=(0.5, 0.9)), 0)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_driver_killed_mid_run_resumes_without_searching_done_problems(tmp_path, sig):
    from apsgen.runner.driver import run_job

    out = tmp_path / "out"
    spec = _spec(out, limit=30, latency_s=0.05, trees=4)
    proc = _start_driver(spec)
    try:
        _wait_for_committed(out, proc, at_least=3)
        os.kill(proc.pid, sig)
        proc.wait(timeout=60)
    finally:
        _end_group(proc)
    store = OutputStore(str(out))
    store.repair()
    committed = set(_ids_once(out))
    assert 3 <= len(committed) < 30, "the kill should land mid-run"
    if sig == signal.SIGTERM:  # a stopped driver says what it did
        assert store.read_manifest().runs, "the stopped driver wrote no run summary"

    searched_again = []
    summary = run_job(spec, output=str(out), show_progress=False, observer=on_result(lambda p, r: searched_again.append(p.id)))
    assert summary.already_done == len(committed)
    assert not committed & set(searched_again)
    assert sorted(_ids_once(out)) == sorted(p.id for p in _problems(30))


def test_application_error_is_recorded_and_the_run_goes_on(tmp_path):
    from apsgen.cli.status_cmd import output_status
    from apsgen.runner.driver import run_job

    rows = [{"question": p.question, "answer": p.answer} for p in _problems(6)]
    rows.insert(2, {"question": "What is the capital of France?", "answer": "Paris"})
    data = tmp_path / "mixed.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    summary = run_job(_spec(out, dataset={"path": str(data), "answer_format": "plain"}), output=str(out), show_progress=False)
    assert len(summary.failed) == 1
    (error,) = summary.failed.values()
    assert "not a simulated question" in error and "capital of France" in error
    assert len(_ids_once(out)) == 6
    status = output_status(str(out))
    assert (status["done"], status["total"], list(status["failed"].values())) == (6, 7, [error])


def test_changed_settings_refuse_to_mix_unless_a_new_version_is_asked(tmp_path):
    from apsgen.io.store import FingerprintMismatch
    from apsgen.runner.driver import run_job

    out = tmp_path / "out"
    run_job(_spec(out, limit=3), output=str(out), show_progress=False)
    changed = _spec(out, limit=3).model_copy(deep=True)
    changed.search.k = 8
    with pytest.raises(FingerprintMismatch, match="--new-version"):
        run_job(changed, output=str(out), show_progress=False)
    summary = run_job(changed, output=str(out), show_progress=False, new_version=True)
    assert summary.output != str(out) and summary.searched + sum(summary.skipped.values()) == 3
    assert len(_ids_once(out)) == 3  # the old output is untouched


class _Stop(Exception):
    pass


def _digests(output: Path) -> dict[str, str]:
    """problem id -> the calibration digest its rows' label rule records."""
    table = OutputStore(str(output)).read_steps().select(["problem_id", "label_rule"]).to_pylist()
    out: dict[str, str] = {}
    for row in table:
        digest = json.loads(row["label_rule"])["calibration"]["digest"]
        assert out.setdefault(row["problem_id"], digest) == digest
    return out


def test_a_job_is_calibrated_once_and_every_row_resumed_or_not_is_judged_against_it(tmp_path):
    from apsgen.cli.status_cmd import output_status
    from apsgen.runner.driver import run_job
    from apsgen.label.calibration import FILE, Calibration, calibration_sample

    def spec(out):
        s = _spec(out, limit=24)
        s.calibration.questions = 6
        return s

    whole = tmp_path / "whole"
    summary = run_job(spec(whole), output=str(whole), show_progress=False)
    cal = Calibration.from_json((whole / FILE).read_text())
    assert summary.calibration == cal.render()
    assert cal.sampled == 6 and cal.cost["questions"] == 6 and 0 <= cal.cost["idle_share"] <= 1
    assert cal.settings["search"]["k"] == 4 and cal.job_fingerprint == summary.fingerprint
    # The sample is drawn by problem id, not input order; its searches' labels are not rows.
    ids = [p.id for p in _problems(24)]
    assert {p.id for p in calibration_sample(_problems(24)[::-1], 6, 0)} == {
        p.id for p in calibration_sample(_problems(24), 6, 0)}
    assert sorted(_ids_once(whole)) == sorted(ids)
    assert set(_digests(whole).values()) == {cal.digest()}
    assert OutputStore(str(whole)).read_manifest().calibration["digest"] == cal.digest()
    assert output_status(str(whole))["calibration"]["digest"] == cal.digest()

    # Stopped after six questions, the resumed run reads the calibration back instead of measuring again.
    part = tmp_path / "part"
    seen = []

    def stop_after_six(problem, result):
        seen.append(problem.id)
        if len(seen) == 6:
            raise _Stop

    with pytest.raises(_Stop):
        run_job(spec(part), output=str(part), show_progress=False, flush_interval_s=0.0, observer=on_result(stop_after_six))
    written = (part / FILE).read_text()
    resumed = run_job(spec(part), output=str(part), show_progress=False)
    assert resumed.already_done == 6 and (part / FILE).read_text() == written
    assert sorted(_ids_once(part)) == sorted(ids)
    assert set(_digests(part).values()) == {Calibration.from_json(written).digest()}


def test_calibrate_only_measures_without_labelling_and_a_foreign_calibration_is_refused(tmp_path):
    from apsgen.runner.calibrate import CalibrationMismatch
    from apsgen.runner.driver import run_job
    from apsgen.label.calibration import FILE

    out = tmp_path / "out"
    summary = run_job(_spec(out, limit=16), output=str(out), show_progress=False, calibrate_only=True)
    assert (out / FILE).exists() and summary.calibration and summary.searched == 0
    assert OutputStore(str(out)).read_problems().num_rows == 0
    again = run_job(_spec(out, limit=16), output=str(out), show_progress=False, calibrate_only=True)
    assert again.calibration == summary.calibration  # read back, not measured twice

    other = tmp_path / "other"
    other_spec = _spec(other, limit=16)
    other_spec.search.k = 6
    OutputStore(str(other)).open_for_job(_manifest_for(other_spec))
    (other / FILE).write_text((out / FILE).read_text())
    with pytest.raises(CalibrationMismatch, match=r"search\.k: 4 in the calibration, 6 in the job"):
        run_job(other_spec, output=str(other), show_progress=False)


def _manifest_for(spec):
    from apsgen.io.store import Manifest
    from apsgen.runner.fingerprint import fingerprint

    return Manifest(job=spec.name, fingerprint=fingerprint(spec), spec=spec.model_dump(mode="json"),
                    apsgen_version="test", created_at="now")
