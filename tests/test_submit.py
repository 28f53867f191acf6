"""`apsgen submit / status --job-id / logs / stop` against a local Ray head that the test starts
on 127.0.0.1 (token auth on, as Ray 2.60 ships) and stops; plus the submission's pure parts."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from apsgen.cli.main import main
from apsgen.cluster.jobs import ClusterError, Submission, extra_requirements, resolve_address, submission_id
from apsgen.io.store import OutputStore

REPO = Path(__file__).resolve().parents[1]


# -- the submission, without a cluster ----------------------------------------------------------


def test_submission_id_is_stable_per_job_and_day():
    day = dt.date(2026, 3, 7)
    assert submission_id("gsm8k-omega", day=day) == "gsm8k-omega-20260307"
    assert submission_id("gsm8k-omega", nightly=True, day=day) == "gsm8k-omega-nightly-20260307"


def test_entrypoint_runs_the_job_from_the_working_dir():
    sub = Submission(
        job_file=str(REPO / "jobs" / "demo.yaml"), job_name="demo", working_dir=str(REPO),
        overrides=["search.k=4", "dataset.path=a b.jsonl"], output="s3://bucket/runs/demo",
    )
    argv = shlex.split(sub.entrypoint())
    assert argv[:5] == ["python", "-m", "apsgen.cli.main", "run", "jobs/demo.yaml"]
    assert argv[5:] == ["--set", "search.k=4", "--set", "dataset.path=a b.jsonl",
                        "--set", "output=s3://bucket/runs/demo", "--no-progress"]
    sub.nightly = True
    assert shlex.split(sub.entrypoint())[3:5] == ["nightly", "jobs/demo.yaml"]
    assert sub.metadata()["apsgen_output"] == "s3://bucket/runs/demo"


def test_job_outside_the_working_dir_is_refused(tmp_path):
    sub = Submission(job_file=str(tmp_path / "x.yaml"), job_name="x", working_dir=str(REPO))
    with pytest.raises(ClusterError, match="outside the working directory"):
        sub.entrypoint()


def test_extras_become_pip_requirements_and_none_means_no_pip():
    assert any(r.startswith("vllm") for r in extra_requirements(["vllm"]))
    with pytest.raises(ClusterError, match="no extra 'nope'"):
        extra_requirements(["nope"])
    sub = Submission(job_file=str(REPO / "jobs/demo.yaml"), job_name="demo", working_dir=str(REPO), extras=[])
    env = sub.runtime_env()
    assert "pip" not in env and env["working_dir"] == str(REPO) and "/.venv" in env["excludes"]


def test_address_must_be_the_dashboard_url(monkeypatch):
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    with pytest.raises(ClusterError, match="--address http://HEAD:8265"):
        resolve_address(None)
    with pytest.raises(ClusterError, match="'10.0.0.1:6379'"):
        resolve_address("10.0.0.1:6379")
    assert resolve_address("http://h:8265/") == "http://h:8265"


# -- a real head --------------------------------------------------------------------------------


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.fixture(scope="module")
def head():
    """`ray start --head --block` in its own session: ending that session ends the whole head."""
    gcs, dashboard, client, agent = _free_ports(4)
    temp = tempfile.mkdtemp(prefix="aps-ray-", dir="/tmp")  # short: Ray's socket paths have a limit
    env = {
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # every port on 127.0.0.1
        "RAY_AUTH_MODE": "token",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",  # the job's `python`
    }
    env.pop("RAY_ADDRESS", None)
    cmd = [
        str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
        "--node-ip-address=127.0.0.1", f"--port={gcs}", "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}", f"--ray-client-server-port={client}",
        f"--dashboard-agent-listen-port={agent}", "--num-cpus=2", "--num-gpus=0",
        f"--temp-dir={temp}", "--disable-usage-stats", "--include-dashboard=true",
    ]
    log = open(Path(temp) / "head.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"ray start exited with {proc.returncode}; see {log.name}")
            try:
                urllib.request.urlopen(url + "/api/version", timeout=2)
                break
            except urllib.error.HTTPError:  # 401 without a token: the dashboard is up
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no Ray dashboard at {url} after 120 s; see {log.name}")
            time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _cli(*argv: str, capsys) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def _wait_status(url: str, sid: str, want: set[str], capsys, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        code, out = _cli("status", "--job-id", sid, "--address", url, "--json", capsys=capsys)
        assert code == 0
        info = json.loads(out)
        if info["status"] in want:
            return info
        assert time.monotonic() < deadline, f"{sid} still {info['status']} after {timeout_s}s"
        time.sleep(1)


@pytest.mark.slow
def test_submit_status_logs_stop_and_resubmit(head, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.chdir(REPO)
    out = tmp_path / "out"
    sid = "simulated-test-" + dt.datetime.now().strftime("%H%M%S")
    args = ["submit", "jobs/simulated.yaml", "--address", head, "--extras", "", "--submission-id", sid,
            "--output", str(out), "--set", "dataset.limit=24", "--set", "policy.simulated.latency_s=0.3",
            "--set", "runner.max_concurrent_trees=4", "--set", "search.max_searches=3",
                "--set", "calibration.questions=0"]

    code, printed = _cli(*args, capsys=capsys)
    assert code == 0 and f"submitted {sid}" in printed
    _wait_status(head, sid, {"RUNNING"}, capsys)

    # A second driver on the same output is refused while the first runs.
    assert main(args) == 2
    assert "already running" in capsys.readouterr().err

    # Stopped mid-run (the whole run takes ~20 s): the driver commits what it finished.
    time.sleep(8)
    code, printed = _cli("stop", sid, "--address", head, capsys=capsys)
    assert code == 0 and "stopped" in printed
    done_before = set(OutputStore(str(out)).read_problems().column("problem_id").to_pylist())
    assert 0 < len(done_before) < 24, _cli("logs", sid, "--address", head, capsys=capsys)[1]

    # Submitted again: the next attempt of the same id resumes and finishes, each problem once.
    code, printed = _cli(*args, capsys=capsys)
    assert code == 0 and f"submitted {sid}-r2" in printed
    info = _wait_status(head, sid, {"SUCCEEDED", "FAILED"}, capsys)  # the base id reads the latest attempt
    assert info["submission_id"] == f"{sid}-r2"
    assert info["status"] == "SUCCEEDED", info["message"]
    assert info["output_status"]["done"] == 24 and info["output"] == str(out)
    ids = OutputStore(str(out)).read_problems().column("problem_id").to_pylist()
    assert len(ids) == len(set(ids)) == 24

    code, log_text = _cli("logs", sid, "--address", head, capsys=capsys)
    assert code == 0
    assert f"{len(done_before)} already done" in log_text  # the resumed run skipped them
    assert "job simulated" in log_text

    code, printed = _cli("status", "--job-id", sid, "--address", head, capsys=capsys)
    assert "SUCCEEDED" in printed and "24/24 problems done" in printed
