"""SearchWorker: a Ray actor that owns one policy engine and one verifier for its whole life (a
`apsgen.pipeline.Labeller`) and labels many problems on them concurrently (asyncio tasks in the
actor's event loop): the Ray executor's side of the one pipeline."""

from __future__ import annotations

import asyncio
import logging
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apsgen.config import JobSpec
from apsgen.pipeline import Labeller, LabelSettings
from apsgen.policy.base import Policy, Sampling
from apsgen.policy.factory import make_policy
from apsgen.problem import Problem
from apsgen.search.result import ProblemResult

log = logging.getLogger(__name__)

_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass
class WorkerInfo:
    policy_model: str
    policy_revision: str | None
    prompt_template_hash: str
    verifier: str
    pid: int = 0
    node: str = ""
    thread_env: dict[str, str] | None = None  # OMP/MKL thread counts Ray gave this process


@dataclass
class SearchOutcome:
    """A problem's result, or the application error that stopped its search."""

    problem_id: str
    result: ProblemResult | None = None
    error: str | None = None
    node: str = ""  # the Ray node that searched it (where a run's work went, per node)


def quiet_logs(verbose: bool) -> None:
    """Warnings only inside the actor unless -v; the engine's own loggers follow the same level."""
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    for name in ("vllm", "ray", "transformers", "aiohttp.access"):
        logging.getLogger(name).setLevel(level)
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "info" if verbose else "error")


class SearchWorker:
    def __init__(
        self, spec: dict[str, Any], verbose: bool = False, policy_wrapper: Callable[[Policy], Any] | None = None
    ):
        """`policy_wrapper`: a benchmark's wrapper around the policy (apsgen.bench.instrument), given
        from outside; its `report()` comes back in `stats()`."""
        quiet_logs(verbose)
        self.spec = JobSpec.model_validate(spec)
        self.verbose = verbose
        policy = make_policy(self.spec.policy, seed=self.spec.seed, verbose=verbose)
        self.policy: Any = policy_wrapper(policy) if policy_wrapper is not None else policy
        from apsgen.verify import Verifier

        v = self.spec.verify
        self.verifier = Verifier.from_settings(v)
        self.judge: Any = None
        if self.spec.judge is not None:
            from apsgen.judge import make_judge

            self.judge = make_judge(self.spec.judge, self.spec.policy, policy=policy, seed=self.spec.seed)
        s = self.spec.sampling
        sampling = Sampling(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, stop=tuple(s.stop))
        self.labeller = Labeller(self.policy, self.verifier, sampling, self.spec.seed, self.judge)
        self._started: asyncio.Task | None = None

    async def _start(self) -> None:
        # One start per worker, however many searches arrive before the engine is up (a replaced
        # worker gets searches without a ready() call first).
        if self._started is None:
            self._started = asyncio.ensure_future(self._start_engine_and_verifier())
        await asyncio.shield(self._started)

    async def _start_engine_and_verifier(self) -> None:
        start = getattr(self.policy, "start", None)
        if start is None:  # the simulated policy: nothing to load, and its answers rarely need sympy
            return
        # A real model's answers soon need a symbolic check: start the verifier's pool while the
        # engine loads, so the first one neither waits for the pool nor slows a running engine.
        warm = asyncio.ensure_future(asyncio.to_thread(self.verifier.warm_up))
        try:
            await start()
        finally:
            await warm

    async def ready(self) -> WorkerInfo:
        """Start the engine (model load) and say what it is, for provenance."""
        await self._start()
        import ray

        return WorkerInfo(
            policy_model=self.policy.name,
            policy_revision=self.policy.revision,
            prompt_template_hash=getattr(self.policy, "template_hash", "none"),
            verifier=self.verifier.describe(),
            pid=os.getpid(),
            thread_env={k: os.environ[k] for k in _THREAD_ENV if k in os.environ},
            node=ray.get_runtime_context().get_node_id() if ray.is_initialized() else "",
        )

    async def label(self, problem: Problem, settings: LabelSettings, calibration: Any = None) -> SearchOutcome:
        """Label one problem (`apsgen.pipeline.Labeller.label`) with `settings` (the job's, or the
        calibration stage's), judged against `calibration` (the job's, from the driver)."""
        await self._start()  # an engine that cannot start fails the call: the driver sees a lost worker
        try:
            result = await self.labeller.label(problem, settings, calibration)
            return SearchOutcome(problem.id, result=result, node=self._node_id())
        except Exception as e:  # an application error belongs to this problem, not to the run
            log.warning("problem %s failed: %s", problem.id, e)
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            return SearchOutcome(problem.id, error=detail[:2000])

    async def label_batch(self, problems: list[Problem], settings: LabelSettings,
                          calibration: Any = None) -> list[SearchOutcome]:
        """Label several problems concurrently in one call (the driver's per-call cost is paid
        once per batch); outcomes in the order given, each problem's error its own."""
        return list(await asyncio.gather(*(self.label(p, settings, calibration) for p in problems)))

    def _node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""

    def stats(self) -> dict[str, Any]:
        """The verifier's counters, the CPU seconds of this process and its children (the verifier
        pool), and what a wrapped policy reports (None without a wrapper)."""
        import psutil

        me = psutil.Process()
        cpu = sum(me.cpu_times()[:2])
        for child in me.children(recursive=True):
            try:
                cpu += sum(child.cpu_times()[:2])
            except psutil.Error:  # a pool process that just exited
                pass
        report = getattr(self.policy, "report", None)
        return {"verifier": self.verifier.stats(), "process_cpu_s": cpu, "policy": report() if report else None}

    async def shutdown(self) -> None:
        if self.judge is not None:
            await self.judge.close()
        await self.policy.close()
        self.verifier.close()
