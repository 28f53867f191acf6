"""A real three-node Ray cluster on this machine: a head (`ray start --head`, no CPUs, so no worker
lands there) and two worker nodes (`ray start --address ...`), each its own process group. A
simulated-policy job runs through `apsgen run` with RAY_ADDRESS; one SearchWorker goes to each
node (SPREAD). Mid-run one worker node is killed outright (SIGKILL of its raylet and everything it
started): the run finishes, the lost problems are searched again on the surviving node, and every
problem is in the output exactly once. The cluster is torn down whatever happens."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from apsgen.io.store import OutputStore

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",  # Ray 2.60's default; joining nodes and drivers read ~/.ray/auth_token
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
        "PYTHONPATH": str(REPO),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    env.pop("RAY_ADDRESS", None)
    # The single-node switch (every port on 127.0.0.1) refuses joining nodes: not set here, and
    # every node still gives 127.0.0.1 as its address.
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    return env


class Cluster:
    def __init__(self) -> None:
        self.temp = tempfile.mkdtemp(prefix="aps-mn-", dir="/tmp")  # Ray's socket paths are short
        self.gcs = _free_port()
        self.address = f"127.0.0.1:{self.gcs}"
        self.nodes: dict[str, subprocess.Popen] = {}
        self.node_temps: list[str] = []
        self.timings: dict[str, float] = {}

    def _start(self, name: str, args: list[str]) -> None:
        log = open(Path(self.temp) / f"{name}.log", "w")
        self.nodes[name] = subprocess.Popen(
            [RAY, "start", "--block", "--disable-usage-stats", *args],
            env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def start(self) -> None:
        t0 = time.monotonic()
        self.dashboard = _free_port()
        self._start("head", ["--head", "--node-ip-address=127.0.0.1", f"--port={self.gcs}", "--num-cpus=0",
                             "--num-gpus=0", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                             f"--dashboard-port={self.dashboard}", f"--dashboard-agent-listen-port={_free_port()}",
                             f"--ray-client-server-port={_free_port()}", f"--temp-dir={self.temp}",
                             "--min-worker-port=20000", "--max-worker-port=20999"])
        self.wait_nodes(1)
        # node_a has room for a replacement worker; node_b for one worker only. Two nodes on one
        # address need ports of their own (the defaults collide), and start one after the other.
        for n, (name, cpus) in enumerate((("node_a", 2), ("node_b", 1)), start=2):
            ports = [f"--{flag}={_free_port()}" for flag in (
                "node-manager-port", "object-manager-port", "metrics-export-port",
                "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port")]
            base = 20000 + 2000 * n
            # a temp dir of its own too: nodes sharing one unpack a job's working_dir over each other
            node_temp = tempfile.mkdtemp(prefix=f"aps-mn-{n}-", dir="/tmp")
            self.node_temps.append(node_temp)
            ports.append(f"--temp-dir={node_temp}")
            self._start(name, [f"--address={self.address}", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}",
                               "--num-gpus=0", f"--resources={json.dumps({name: 1})}", *ports,
                               f"--min-worker-port={base}", f"--max-worker-port={base + 999}"])
            self.wait_nodes(n)
        self.timings["cluster_start_s"] = round(time.monotonic() - t0, 1)

    def alive_nodes(self) -> list[dict]:
        code = (
            "import json, ray; ray.init(address='%s', logging_level='ERROR'); "
            "print(json.dumps([{'id': n['NodeID'], 'alive': n['Alive'], 'res': n['Resources']} for n in ray.nodes()]))"
            % self.address
        )
        out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            self.probe_error = out.stderr[-1500:]
            return []
        return [n for n in json.loads(out.stdout.strip().splitlines()[-1]) if n["alive"]]

    def wait_nodes(self, n: int, timeout_s: float = 120) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while True:
            for name, proc in self.nodes.items():
                if proc.poll() is not None:
                    pytest.fail(f"ray start for {name} exited with {proc.returncode}; see {self.temp}/{name}.log")
            nodes = self.alive_nodes()
            if len(nodes) >= n:
                return nodes
            if time.monotonic() > deadline:
                pytest.fail(f"{len(nodes)} of {n} Ray nodes up after {timeout_s}s; logs in {self.temp}; "
                            f"last probe: {getattr(self, 'probe_error', '')}")
            time.sleep(1)

    def kill(self, name: str) -> None:
        """SIGKILL the node's whole process group: `ray start`, its raylet, and the workers it forked."""
        os.killpg(self.nodes[name].pid, signal.SIGKILL)
        self.nodes[name].wait()

    def stop(self) -> None:
        for name in ("node_a", "node_b", "head"):
            proc = self.nodes.get(name)
            if proc is None or proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _run(job: Path, out: Path, address: str, *extra: str) -> subprocess.Popen:
    env = {**_env(), "RAY_ADDRESS": address}
    return subprocess.Popen(
        [sys.executable, "-m", "apsgen.cli.main", "run", str(job), "--output", str(out), "--no-progress", "--json",
         *extra],
        env=env, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_a_submitted_job_runs_on_both_worker_nodes(cluster: Cluster, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from apsgen.cli.main import main

    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.chdir(REPO)
    url = f"http://127.0.0.1:{cluster.dashboard}"
    out = tmp_path / "submitted"
    sid = "multinode-" + time.strftime("%H%M%S")
    t0 = time.monotonic()
    assert main(["submit", "jobs/simulated.yaml", "--address", url, "--extras", "", "--submission-id", sid,
                 "--output", str(out), "--set", "dataset.limit=30", "--set", "policy.simulated.latency_s=0.1",
                 "--set", "runner.num_workers=2", "--set", "runner.max_concurrent_trees=2",
                 "--set", "search.max_searches=3"]) == 0
    from apsgen.cluster.jobs import job_info

    deadline = time.monotonic() + 240
    while True:
        info = job_info(sid, url)
        if info["status"] in ("SUCCEEDED", "FAILED", "STOPPED"):
            break
        assert time.monotonic() < deadline, info
        time.sleep(1)
    cluster.timings["submit_s"] = round(time.monotonic() - t0, 1)
    assert info["status"] == "SUCCEEDED", info.get("message")
    manifest = OutputStore(str(out)).read_manifest()
    assert manifest is not None
    by_node = manifest.runs[-1]["problems_by_node"]
    assert len(by_node) == 2 and sum(by_node.values()) == 30, by_node


def test_two_nodes_share_the_work_and_a_killed_node_loses_nothing(cluster: Cluster, tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        "name: multinode\n"
        "dataset: {path: simulated, limit: 60}\n"
        "policy: {backend: simulated, model: simulated, simulated: {latency_s: 0.25, success_rate: [0.5, 0.95]}}\n"
        "search: {max_searches: 3, screen_samples: 8}\n"
        "runner: {num_workers: 2, max_concurrent_trees: 2}\n"
    )
    out = tmp_path / "out"
    t0 = time.monotonic()
    proc = _run(job, out, cluster.address)
    # Kill node_b once some problems are committed (the driver flushes every few seconds).
    store = OutputStore(str(out))
    killed_at = None
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        done = len(store.done_ids()) if store.exists() else 0
        if killed_at is None and done >= 6:
            cluster.kill("node_b")
            killed_at = time.monotonic() - t0
            cluster.timings["killed_after_s"] = round(killed_at, 1)
            cluster.timings["done_when_killed"] = done
        time.sleep(0.5)
    stdout, stderr = proc.communicate(timeout=60)
    cluster.timings["run_s"] = round(time.monotonic() - t0, 1)
    print("multinode timings:", cluster.timings)
    assert proc.returncode == 0, stderr[-3000:]
    assert killed_at is not None, "the run ended before a node could be killed"
    # The summary is the JSON object the run prints; Ray may print about the lost node before it.
    summary, _ = json.JSONDecoder().raw_decode(stdout, stdout.index('{\n  "job"'))
    assert summary["worker_restarts"] >= 1  # node_b's worker was replaced (on node_a)
    assert len(summary["problems_by_node"]) == 2, summary["problems_by_node"]  # both nodes did work
    ids = OutputStore(str(out)).read_problems().column("problem_id").to_pylist()
    assert len(ids) == len(set(ids)) == 60  # every problem exactly once, none lost with the node
    assert not summary["failed"]
