"""`apsgen bench engine`: does apsgen keep the engine as busy as the engine alone would be?

1. The pipeline: a job (by default the demo job on its first problems) runs through apsgen's
   whole path (driver, a SearchWorker actor with the vLLM engine, OmegaPRM, the verifier, shards),
   and the worker records every request its searches send (prompt, n, sampling and seed).
2. The bare engine: the same requests go straight to an AsyncLLM with the same engine arguments in
   this process, with the same shape of concurrency: each question's requests one after another in
   their recorded order, as many questions at once as the job runs trees. So the comparison is the
   pipeline's cost, not the parallelism a search's sequential binary search leaves on the table.

Each side's rate is its generated tokens over the time from engine ready to the last result;
`ratio` = pipeline / bare.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import shutil
import tempfile
import time
from collections import OrderedDict
from typing import Any

from apsgen.bench.common import measured
from apsgen.runner.driver import RunObserver

TARGET_RATIO = 0.95

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--job", default="jobs/demo.yaml", help="job spec whose settings and problems to use")
    parser.add_argument("--problems", type=int, default=6, help="its first N problems (default 6)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec value (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


class _Recorder(RunObserver):
    """Observer: the time the workers were up and done, and the requests they recorded."""

    def __init__(self) -> None:
        self.t_ready = self.t_done = 0.0
        self.requests: list[dict[str, Any]] = []
        self.thread_env: dict[str, str] = {}
        self.verifier: dict[str, int] = {}

    def workers_ready(self, actors: list[Any], infos: list[Any]) -> None:
        self.t_ready = time.monotonic()
        self.thread_env = dict(infos[0].thread_env or {})

    def workers_done(self, actors: list[Any]) -> None:
        import ray

        self.t_done = time.monotonic()
        stats = ray.get([a.stats.remote() for a in actors])
        for worker in stats:
            self.requests.extend((worker["policy"] or {}).get("requests", []))
        self.verifier = stats[0]["verifier"]


def run_pipeline(spec, verbose: bool = False) -> dict[str, Any]:
    from apsgen.bench.instrument import recording
    from apsgen.runner.driver import run_job

    out = tempfile.mkdtemp(prefix="apsgen-bench-engine-")
    recorder = _Recorder()
    try:
        summary = run_job(
            spec, output=out, verbose=verbose, show_progress=False, policy_wrapper=recording,
            observer=recorder,
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)
    wall = recorder.t_done - recorder.t_ready
    return {
        "requests": recorder.requests,
        "generated_tokens": summary.generated_tokens,
        "rollouts": summary.rollouts,
        "wall_s": wall,
        "failed": len(summary.failed),
        "thread_env": recorder.thread_env,
        "verifier": recorder.verifier,
    }


async def _replay(spec, requests: list[dict[str, Any]], verbose: bool) -> dict[str, Any]:
    from vllm import AsyncEngineArgs, SamplingParams
    from vllm.sampling_params import RequestOutputKind
    from vllm.v1.engine.async_llm import AsyncLLM

    from apsgen.policy.prompt import PromptBuilder
    from apsgen.policy.vllm_engine import VLLMPolicy, has_cuda

    args = VLLMPolicy(spec.policy).engine_args(has_cuda())
    with _stderr_quiet(not verbose):  # the engine process's load chatter, as in a quiet worker
        engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**args))
    try:
        tokenizer = getattr(engine, "tokenizer", None)
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(args["model"], revision=spec.policy.revision)
        prompts = PromptBuilder(spec.policy.prompt, tokenizer)
        # Rendered before the clock starts: the bare side pays for nothing but the engine.
        per_question: OrderedDict[str, list[tuple[str, Any]]] = OrderedDict()
        for r in requests:
            s = r["sampling"]
            params = SamplingParams(
                n=r["n"], temperature=s["temperature"], top_p=s["top_p"], max_tokens=s["max_tokens"],
                stop=list(s["stop"]) or None, seed=s["seed"], output_kind=RequestOutputKind.FINAL_ONLY,
            )
            per_question.setdefault(r["question"], []).append((prompts.render(r["question"], r["prefix"]), params))
        gate = asyncio.Semaphore(spec.runner.max_concurrent_trees)
        ids = iter(range(len(requests)))
        tokens = 0

        async def question(calls: list[tuple[str, Any]]) -> None:
            nonlocal tokens
            async with gate:
                for prompt, params in calls:
                    final = None
                    async for out in engine.generate(prompt, params, f"bench-{next(ids)}"):
                        final = out
                    tokens += sum(len(c.token_ids) for c in final.outputs)

        t0 = time.monotonic()
        await asyncio.gather(*(question(calls) for calls in per_question.values()))
        return {"generated_tokens": tokens, "wall_s": time.monotonic() - t0}
    finally:
        engine.shutdown()
        # Collected now, while the interpreter is whole: at exit its __del__ fails noisily.
        del engine
        gc.collect()


@contextlib.contextmanager
def _stderr_quiet(quiet: bool):
    """Send file descriptor 2 (this process's and the children it starts) to /dev/null."""
    if not quiet:
        yield
        return
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def run_bare(spec, requests: list[dict[str, Any]], thread_env: dict[str, str], verbose: bool = False) -> dict[str, Any]:
    from apsgen.policy.vllm_engine import configure_cpu_environment, has_cuda, quiet_engine_logs

    # The worker's thread settings (Ray sets OMP_NUM_THREADS in its workers), so both sides run
    # the same engine: on 2 shared cores they alone move the rate by a third.
    os.environ.update(thread_env)
    if not has_cuda():
        configure_cpu_environment()
    if not verbose:  # vLLM's warnings go to stdout, where the figures go
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    quiet_engine_logs(verbose)
    return asyncio.run(_replay(spec, requests, verbose))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from apsgen.config import load_spec

    spec = load_spec(args.job, [f"dataset.limit={args.problems}", *args.overrides])
    if spec.policy.backend != "vllm":
        raise SystemExit(f"apsgen bench engine: {args.job} uses policy.backend={spec.policy.backend!r}; it needs vllm")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    pipeline = run_pipeline(spec, args.verbose)
    bare = run_bare(spec, pipeline["requests"], pipeline["thread_env"], args.verbose)
    p_rate = pipeline["generated_tokens"] / pipeline["wall_s"]
    b_rate = bare["generated_tokens"] / bare["wall_s"]
    return {
        "job": spec.name,
        "model": spec.policy.model,
        "problems": args.problems,
        "requests": len(pipeline["requests"]),
        "rollouts": pipeline["rollouts"],
        "pipeline_generated_tokens": pipeline["generated_tokens"],
        "pipeline_wall_s": round(pipeline["wall_s"], 2),
        "pipeline_tokens_per_s": round(p_rate, 1),
        "bare_generated_tokens": bare["generated_tokens"],
        "bare_wall_s": round(bare["wall_s"], 2),
        "bare_tokens_per_s": round(b_rate, 1),
        "ratio": round(p_rate / b_rate, 3),
        "target_ratio": TARGET_RATIO,
        "failed_problems": pipeline["failed"],
        "thread_env": pipeline["thread_env"],
        "symbolic_checks": pipeline["verifier"].get("symbolic_checks", 0),
    }


def run(args: argparse.Namespace) -> int:
    r = measured(args, measure)
    if r is None:
        return 0
    print(f"apsgen bench engine: {r['job']} ({r['model']}), {r['problems']} problems, "
          f"{r['requests']} requests, {r['rollouts']} rollouts")
    print(f"  bare engine   {r['bare_tokens_per_s']:8.1f} generated tokens/s  "
          f"({r['bare_generated_tokens']} tokens in {r['bare_wall_s']}s)")
    print(f"  pipeline      {r['pipeline_tokens_per_s']:8.1f} generated tokens/s  "
          f"({r['pipeline_generated_tokens']} tokens in {r['pipeline_wall_s']}s)")
    verdict = "met" if r["ratio"] >= TARGET_RATIO else "NOT met"
    print(f"  ratio         {r['ratio']:.3f}  (pipeline / bare; target >= {TARGET_RATIO}: {verdict})")
    return 0
