"""The OpenAI-compatible backend: retries, refusals and the concurrency limit against a scripted
server, then the real thing against `vllm serve` (CPU build, SmolLM2) that the test starts."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from apsgen.config import OpenAISpec, PolicySpec, PromptSpec, parse_spec
from apsgen.policy import openai_server
from apsgen.policy.base import Sampling
from apsgen.policy.openai_server import OpenAIPolicy, ServerError

REPO = Path(__file__).resolve().parents[1]


class _WordTokenizer:
    """Enough of a tokenizer for the scripted server: no chat template, a token is a word."""

    chat_template = None

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(range(len(text.split())))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ScriptedServer:
    """An in-process aiohttp server: each POST answers with the next scripted status."""

    def __init__(
        self, statuses: list[int], *, reject_token_ids: bool = False, delay_s: float = 0.0, models: list[str] | None = None
    ):
        self.statuses = list(statuses)
        self.model_ids = models or ["served-model"]
        self.reject_token_ids = reject_token_ids
        self.delay_s = delay_s
        self.posts: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def models(self, request):
        from aiohttp import web

        return web.json_response({"data": [{"id": m} for m in self.model_ids]})

    async def completions(self, request):
        from aiohttp import web

        body = await request.json()
        self.posts.append(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
            if self.reject_token_ids and "return_token_ids" in body:
                return web.Response(status=400, text='{"error": "unknown field return_token_ids"}')
            status = self.statuses.pop(0) if self.statuses else 200
            if status != 200:
                return web.Response(status=status, text=f"scripted {status}", headers={"Retry-After": "0"})
            choices = [
                {"index": i, "text": f" sample {i} \\boxed{{4}}", "finish_reason": "length" if i == 0 else "stop",
                 **({"token_ids": [1] * (3 + i)} if "return_token_ids" in body else {})}
                for i in range(body["n"])
            ]
            return web.json_response({"choices": choices, "usage": {"prompt_tokens": 11, "completion_tokens": 99}})
        finally:
            self.in_flight -= 1

    async def __aenter__(self):
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/completions", self.completions)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        self.port = _free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()


def _policy(port: int, **openai) -> OpenAIPolicy:
    spec = PolicySpec(
        backend="openai",
        model="served-model",
        prompt=PromptSpec(use_chat_template=False),
        openai=OpenAISpec(base_url=f"http://127.0.0.1:{port}/v1", **openai),
    )
    return OpenAIPolicy(spec)


@pytest.fixture(autouse=True)
def _word_tokenizer(monkeypatch, request):
    if "real_server" not in request.fixturenames:
        monkeypatch.setattr(openai_server, "_load_tokenizer", lambda path, revision: _WordTokenizer())


def _run(coro):
    return asyncio.run(coro)


def test_one_request_per_estimate_with_n_and_seed():
    async def go():
        async with ScriptedServer([]) as server:
            policy = _policy(server.port)
            gen = await policy.generate("2+2?", "We add.", 3, Sampling(max_tokens=7, seed=5, stop=("\n\n\n",)))
            await policy.close()
            return server, gen

    server, gen = _run(go())
    assert len(server.posts) == 1
    post = server.posts[0]
    assert (post["n"], post["seed"], post["max_tokens"], post["model"]) == (3, 5, 7, "served-model")
    assert post["prompt"].endswith("Answer: We add.")  # the prefix continues the answer verbatim
    assert [s.n_tokens for s in gen.samples] == [3, 4, 5]  # from the returned token ids
    assert [s.truncated for s in gen.samples] == [True, False, False]
    assert gen.prompt_tokens == 11


def test_429_and_5xx_are_retried_then_succeed():
    async def go():
        async with ScriptedServer([429, 503, 500]) as server:
            policy = _policy(server.port, max_retries=3)
            gen = await policy.generate("q", "", 2, Sampling())
            await policy.close()
            return server, policy, gen

    server, policy, gen = _run(go())
    assert len(server.posts) == 4 and policy.retries == 3
    assert len(gen.samples) == 2


def test_retries_are_bounded():
    async def go():
        async with ScriptedServer([503] * 10) as server:
            policy = _policy(server.port, max_retries=2)
            with pytest.raises(ServerError, match=r"HTTP 503.*gave up after 3 attempts"):
                await policy.generate("q", "", 2, Sampling())
            await policy.close()
            return server

    assert len(_run(go()).posts) == 3


def test_client_errors_are_not_retried():
    async def go():
        async with ScriptedServer([400]) as server:
            policy = _policy(server.port, max_retries=5)
            with pytest.raises(ServerError, match="HTTP 400: scripted 400"):
                await policy.generate("q", "", 2, Sampling())
            await policy.close()
            return server

    assert len(_run(go()).posts) == 1


def test_server_without_token_ids_falls_back_to_local_counts():
    async def go():
        async with ScriptedServer([], reject_token_ids=True) as server:
            policy = _policy(server.port)
            first = await policy.generate("q", "", 2, Sampling(max_tokens=50))
            second = await policy.generate("q", "", 2, Sampling(max_tokens=50))
            await policy.close()
            return server, first, second

    server, first, second = _run(go())
    assert len(server.posts) == 3  # one refusal, then plain requests only
    for gen in (first, second):
        assert gen.samples[0].n_tokens == 50  # truncated: exactly max_tokens
        assert gen.samples[1].n_tokens == 3  # " sample 1 \boxed{4}" counted locally


def test_concurrency_limit_holds():
    async def go():
        async with ScriptedServer([], delay_s=0.05) as server:
            policy = _policy(server.port, max_concurrency=3)
            await asyncio.gather(*(policy.generate("q", str(i), 1, Sampling()) for i in range(12)))
            await policy.close()
            return server

    server = _run(go())
    assert len(server.posts) == 12 and server.max_in_flight == 3


def test_the_served_model_is_found_or_the_choices_named():
    async def start(models: list[str], wanted: str):
        async with ScriptedServer([], models=models) as server:
            spec = PolicySpec(
                backend="openai", model=wanted, openai=OpenAISpec(base_url=f"http://127.0.0.1:{server.port}/v1")
            )
            policy = OpenAIPolicy(spec)
            try:
                await policy.start()
            finally:
                await policy.close()
            return policy.served_model

    # One model behind the URL: it is the one meant, whatever its name there.
    assert _run(start(["served-model"], "/models/x")) == "served-model"
    assert _run(start(["a", "b"], "b")) == "b"
    with pytest.raises(ServerError, match=r"policy.model 'c' is not among .*\['a', 'b'\]"):
        _run(start(["a", "b"], "c"))


# -- the real server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_server():
    from apsgen.models import is_prepared, model_dir

    pytest.importorskip("vllm")
    pytest.importorskip("transformers")
    if not is_prepared("smollm2-135m"):
        pytest.skip("demo model not prepared (apsgen models prepare smollm2-135m)")
    from apsgen.policy.vllm_engine import configure_cpu_environment

    saved = dict(os.environ)
    configure_cpu_environment()
    env = {**os.environ, "VLLM_LOGGING_LEVEL": "WARNING", "HF_HUB_OFFLINE": "1"}
    os.environ.clear()
    os.environ.update(saved)
    port = _free_port()
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"apsgen-vllm-serve-{port}.log", "w")
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir("smollm2-135m")), "--served-model-name", "smollm2",
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--enforce-eager", "--max-model-len", "2048",
        "--max-num-batched-tokens", "32768", "--seed", "0",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve did not become healthy in 240 s; see {log.name}")
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _demo_spec(base_url: str, output: str, limit: int):
    import yaml

    raw = yaml.safe_load((REPO / "jobs" / "demo.yaml").read_text())
    raw["dataset"]["path"] = str(REPO / "jobs" / "data" / "demo.jsonl")
    return parse_spec(
        raw,
        "demo.yaml",
        [
            "policy.backend=openai",
            f"policy.openai.base_url={base_url}",
            f"dataset.limit={limit}",
            "search.k=4",
            "search.screen_samples=4",
            "search.max_searches=2",
            f"output={output}",
        ],
    )


@pytest.mark.slow
@pytest.mark.engine
def test_real_server_samples_match_the_chat_prompt(real_server, tmp_path):
    spec = _demo_spec(real_server, str(tmp_path / "out"), 1)

    async def go():
        policy = OpenAIPolicy(spec.policy)
        await policy.start()
        q = "Sara has 12 stickers and gets 7 more. How many stickers does she have?"
        sampling = Sampling(temperature=0.8, max_tokens=24, seed=7)
        a = await policy.generate(q, "Sara starts with 12 stickers.", 4, sampling)
        b = await policy.generate(q, "Sara starts with 12 stickers.", 4, sampling)
        rendered = policy.prompts.render(q, "Sara starts with 12 stickers.")
        expected_prompt_tokens = len(policy._tokenizer.encode(rendered))
        await policy.close()
        return policy, a, b, rendered, expected_prompt_tokens

    policy, a, b, rendered, expected = _run(go())
    assert policy.served_model == "smollm2"
    assert "<|im_start|>assistant\nSara starts with 12 stickers." in rendered  # prefix opens the assistant turn
    assert a.prompt_tokens == expected
    assert len(a.samples) == 4
    assert [s.text for s in a.samples] == [s.text for s in b.samples]  # the seed fixes the samples
    assert all(0 < s.n_tokens <= 24 for s in a.samples)
    assert all(s.truncated == (s.n_tokens == 24) for s in a.samples)


@pytest.mark.slow
@pytest.mark.engine
def test_real_server_through_the_pipeline(real_server, tmp_path):
    from apsgen.io.store import OutputStore
    from apsgen.runner.driver import run_job

    out = str(tmp_path / "out")
    summary = run_job(_demo_spec(real_server, out, 2), output=out, show_progress=False)
    assert not summary.failed, summary.failed
    assert summary.total_problems == 2 and summary.policy_calls > 0 and summary.generated_tokens > 0
    problems = OutputStore(out).read_problems()
    assert sorted(problems.column("problem_id").to_pylist()) == sorted(set(problems.column("problem_id").to_pylist()))
    assert problems.num_rows == 2


# -- fleets: several servers of one model ---------------------------------------------------


def _fleet(ports: list[int], **openai) -> OpenAIPolicy:
    spec = PolicySpec(
        backend="openai",
        model="served-model",
        prompt=PromptSpec(use_chat_template=False),
        openai=OpenAISpec(base_urls=[f"http://127.0.0.1:{p}/v1" for p in ports], **openai),
    )
    return OpenAIPolicy(spec)


def test_fleet_trees_stick_to_a_server_and_balance_by_load():
    async def go():
        async with ScriptedServer([], delay_s=0.05) as a, ScriptedServer([], delay_s=0.05) as b:
            policy = _fleet([a.port, b.port])
            await policy.start()
            questions = [f"question {i}?" for i in range(8)]
            # Each tree makes three requests in a row, all trees at once.
            async def tree(q: str) -> None:
                for step in range(3):
                    await policy.generate(q, f"step {step}", 2, Sampling(max_tokens=5, seed=step))
            await asyncio.gather(*(tree(q) for q in questions))
            await policy.close()
            return a, b, policy

    a, b, policy = _run(go())
    where = {}
    for name, server in (("a", a), ("b", b)):
        for post in server.posts:
            q = post["prompt"].split("Question: ")[-1].split("\n")[0]
            where.setdefault(q, set()).add(name)
    assert all(len(s) == 1 for s in where.values())  # every tree on one server only
    assert len(a.posts) == len(b.posts) == 12  # 8 trees x 3 requests, split evenly
    assert not policy.failures


def test_fleet_takes_a_dead_server_out_and_moves_its_trees():
    async def go():
        async with ScriptedServer([], delay_s=0.01) as a:
            b = ScriptedServer([], delay_s=0.01)
            await b.__aenter__()
            policy = _fleet([a.port, b.port], max_retries=3)
            await policy.start()
            sampling = Sampling(max_tokens=5, seed=1)
            first = [await policy.generate(f"q{i}?", "", 2, sampling) for i in range(4)]
            on_b = [q for q, s in policy._trees.items() if s.url.endswith(f":{b.port}/v1")]
            await b.__aexit__()  # the server stops answering mid-run
            again = [await policy.generate(f"q{i}?", "more", 2, sampling) for i in range(4)]
            stats = policy.fleet_stats()
            await policy.close()
            return a, b, policy, first, again, on_b, stats

    a, b, policy, first, again, on_b, stats = _run(go())
    assert on_b, "some trees started on the second server"
    assert len(first) == len(again) == 4 and all(len(g.samples) == 2 for g in again)  # nothing lost
    assert policy.failures[f"http://127.0.0.1:{b.port}/v1"] >= 1  # its failure counted
    assert stats[f"http://127.0.0.1:{b.port}/v1"]["out"] is True
    assert all(policy._trees[q].url.endswith(f":{a.port}/v1") for q in on_b)  # its trees moved


def test_the_last_live_server_is_never_taken_out():
    async def go():
        async with ScriptedServer([503] * 10) as a:
            policy = _fleet([a.port, _free_port()], max_retries=1)
            await policy.start()  # the second one does not exist: left out at start
            with pytest.raises(ServerError, match="503"):
                await policy.generate("q?", "", 1, Sampling(max_tokens=5))
            await policy.close()
            return policy

    policy = _run(go())
    assert sum(policy.failures.values()) == 1  # the missing server, at start


@pytest.mark.slow
@pytest.mark.engine
def test_fleet_of_a_real_server_and_one_killed_mid_run(real_server, tmp_path):
    # One real `vllm serve` and a scripted server that answers in the served model's name, run in
    # its own thread; the scripted one is shut down while the pipeline runs.
    import threading

    from apsgen.io.store import OutputStore
    from apsgen.runner.driver import run_job

    loop = asyncio.new_event_loop()
    scripted = ScriptedServer([], delay_s=0.5, models=["smollm2"])
    threading.Thread(target=loop.run_forever, daemon=True).start()
    asyncio.run_coroutine_threadsafe(scripted.__aenter__(), loop).result(timeout=30)
    out = str(tmp_path / "out")
    spec = _demo_spec(real_server, out, 4)
    spec.policy.openai.base_urls = [real_server, f"http://127.0.0.1:{scripted.port}/v1"]
    spec.policy.openai.max_retries = 2

    def kill_when_used() -> None:
        deadline = time.monotonic() + 120
        while not scripted.posts and time.monotonic() < deadline:
            time.sleep(0.2)
        asyncio.run_coroutine_threadsafe(scripted.__aexit__(), loop).result(timeout=30)

    killer = threading.Thread(target=kill_when_used)
    killer.start()
    try:
        summary = run_job(spec, output=out, show_progress=False)
    finally:
        killer.join(timeout=150)
        loop.call_soon_threadsafe(loop.stop)
    assert scripted.posts, "the scripted server took trees before it went down"
    assert not summary.failed, summary.failed
    ids = OutputStore(out).read_problems().column("problem_id").to_pylist()
    assert len(ids) == len(set(ids)) == 4  # nothing lost, nothing twice
