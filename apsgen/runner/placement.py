"""Where SearchWorker actors go: the Ray resources each one asks for."""

from __future__ import annotations

import os

from apsgen.config import JobSpec


def on_cluster() -> bool:
    """A Ray cluster we joined (RAY_ADDRESS), rather than an embedded Ray on this machine."""
    return bool(os.environ.get("RAY_ADDRESS"))


def worker_resources(spec: JobSpec, cluster_gpus: float) -> dict[str, float]:
    """Ray resources for one SearchWorker.

    A vLLM worker takes `tensor_parallel_size` GPUs where there are GPUs, and also on a joined
    cluster that has none yet: GPU node types that scale from zero only appear once something asks
    for a GPU. Elsewhere it takes none (the CPU build). On a 2-core machine one CPU per actor can
    leave the others pending, so embedded runs take no CPU slot; on a cluster a worker takes one,
    which also keeps it off a head node that offers no CPUs.
    """
    gpus = spec.runner.num_gpus_per_worker
    if gpus is None:
        wants_gpu = spec.policy.backend == "vllm" and (cluster_gpus > 0 or on_cluster())
        gpus = float(spec.policy.engine.tensor_parallel_size) if wants_gpu else 0.0
    cpus = 1.0 if on_cluster() else 0.0
    return {"num_cpus": cpus, "num_gpus": gpus}
