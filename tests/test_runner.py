"""Runner pieces: where workers go, what happens when none can start, the progress bar."""

from __future__ import annotations

import pytest

from apsgen.config import parse_spec
from apsgen.runner.placement import worker_resources


def _spec(**policy):
    return parse_spec({"name": "t", "dataset": {"path": "simulated", "limit": 2}, "policy": policy})


def test_embedded_runs_take_no_cpu_slot_and_no_gpu_without_one(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert worker_resources(_spec(backend="vllm"), cluster_gpus=0) == {"num_cpus": 0.0, "num_gpus": 0.0}
    assert worker_resources(_spec(backend="vllm", engine={"tensor_parallel_size": 2}), cluster_gpus=8)["num_gpus"] == 2


def test_on_a_cluster_vllm_workers_ask_for_gpus_even_before_gpu_nodes_exist(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    # GPU node types scale from zero: asking is what makes the autoscaler start one.
    assert worker_resources(_spec(backend="vllm", engine={"tensor_parallel_size": 4}), cluster_gpus=0) == {
        "num_cpus": 1.0,
        "num_gpus": 4.0,
    }
    assert worker_resources(_spec(backend="openai"), cluster_gpus=8)["num_gpus"] == 0
    spec = _spec(backend="vllm")
    spec.runner.num_gpus_per_worker = 0  # vLLM's CPU build on a CPU cluster
    assert worker_resources(spec, cluster_gpus=0)["num_gpus"] == 0


def test_a_policy_that_cannot_start_stops_the_run_with_its_reason(tmp_path):
    import socket

    from apsgen.runner.driver import run_job
    from apsgen.runner.pool import WorkerStartError

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # 'simulated' names no tokenizer, so the policy fails at start, as a wrong model name would.
    spec = parse_spec(
        {
            "name": "t",
            "dataset": {"path": "simulated", "limit": 2},
            "policy": {
                "backend": "openai",
                "model": "simulated",
                "prompt": {"use_chat_template": False},
                "openai": {"base_url": f"http://127.0.0.1:{port}/v1", "max_retries": 0},
            },
            "runner": {"max_retries": 1},
        }
    )
    with pytest.raises(WorkerStartError, match=r"worker 0 could not start its openai policy 'simulated' \(2 tries\): ServerError: cannot load the tokenizer"):
        run_job(spec, output=str(tmp_path / "out"), show_progress=False)
