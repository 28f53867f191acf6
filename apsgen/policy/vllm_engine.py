"""The vLLM backend: one AsyncLLM engine in this process, many concurrent requests.

Every `generate` is ONE engine request with SamplingParams(n=k, seed), so the k completions of
an MC estimate share the prefix in the engine's prefix cache.
"""

from __future__ import annotations

import itertools
import logging
import os
from typing import Any

from apsgen.config import PolicySpec
from apsgen.models import resolve
from apsgen.policy.base import Generation, Sample, Sampling
from apsgen.policy.prompt import ChatPromptPolicy, PromptBuilder

log = logging.getLogger(__name__)


def has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # torch absent or broken: no GPU for us either way
        return False


def configure_cpu_environment() -> None:
    """Settings measured to work for vLLM's CPU build on small machines (docs/cpu-engine.md).

    Must run before vllm is imported; values the user already set win.
    """
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    if "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = f"0-{ncpu - 1}"
        # Ray starts actors with OMP_NUM_THREADS=1, which the engine process inherits: on 2 cores
        # that measured 155 generated tok/s against 245 with one thread per bound core.
        os.environ["OMP_NUM_THREADS"] = str(ncpu)
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def quiet_engine_logs(verbose: bool) -> None:
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "1")


class VLLMPolicy(ChatPromptPolicy):
    """Policy backed by an in-process vLLM AsyncLLM engine."""

    def __init__(self, spec: PolicySpec, *, verbose: bool = False):
        self.spec = spec
        self.model_path, self.name = resolve(spec.model)
        self.revision = spec.revision
        self.verbose = verbose
        self._engine: Any = None
        self._tokenizer: Any = None
        self.prompts: PromptBuilder | None = None
        self._ids = itertools.count()

    def engine_args(self, on_gpu: bool) -> dict[str, Any]:
        e = self.spec.engine
        args: dict[str, Any] = {
            "model": self.model_path,
            "revision": self.spec.revision,
            "dtype": e.dtype,
            "seed": e.seed,
            "enable_prefix_caching": e.enable_prefix_caching,
            "enforce_eager": e.enforce_eager,
            "tensor_parallel_size": e.tensor_parallel_size,
            "disable_log_stats": True,
        }
        if e.max_model_len is not None:
            args["max_model_len"] = e.max_model_len
        if e.max_num_seqs is not None:
            args["max_num_seqs"] = e.max_num_seqs
        if e.max_num_batched_tokens is not None:
            args["max_num_batched_tokens"] = e.max_num_batched_tokens
        if on_gpu:
            args["gpu_memory_utilization"] = e.gpu_memory_utilization
        else:
            # bf16 is ~5x slower than fp32 on CPUs without AMX, and the compiled mode takes minutes
            # to load; per-request seeds crash the CPU engine once a batch passes 4,096 prompt
            # tokens unless the batch budget is larger (docs/cpu-engine.md).
            if e.dtype == "auto":
                args["dtype"] = "float32"
            args["enforce_eager"] = True
            args.setdefault("max_num_batched_tokens", 32768)
        args.update(e.extra)
        return args

    async def start(self) -> None:
        on_gpu = has_cuda()
        if not on_gpu:
            configure_cpu_environment()
        quiet_engine_logs(self.verbose)
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        args = self.engine_args(on_gpu)
        log.info("starting vLLM engine: %s", {k: v for k, v in args.items() if k != "model"})
        self._engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**args))
        self._tokenizer = self._engine.tokenizer if hasattr(self._engine, "tokenizer") else None
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.model_path, revision=self.spec.revision)
        self.prompts = PromptBuilder(self.spec.prompt, self._tokenizer)

    async def generate(self, question: str, prefix: str, n: int, sampling: Sampling) -> Generation:
        if self._engine is None:
            await self.start()
        assert self.prompts is not None
        return await self.generate_text(self.prompts.render(question, prefix), n, sampling)

    async def generate_text(self, prompt: str, n: int, sampling: Sampling) -> Generation:
        """n completions of a fully rendered prompt (the judge renders its own on this engine)."""
        if self._engine is None:
            await self.start()
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        params = SamplingParams(
            n=n,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
            stop=list(sampling.stop) or None,
            seed=sampling.seed,
            output_kind=RequestOutputKind.FINAL_ONLY,
        )
        final = None
        async for out in self._engine.generate(prompt, params, f"apsgen-{next(self._ids)}"):
            final = out
        assert final is not None
        samples = [
            Sample(text=c.text, n_tokens=len(c.token_ids), truncated=c.finish_reason == "length")
            for c in final.outputs
        ]
        return Generation(samples=samples, prompt_tokens=len(final.prompt_token_ids or ()))

    async def close(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None
