"""The OpenAI-compatible server backend: `vllm serve`, SGLang or a hosted endpoint, reached through
the completions API.

The prompt is rendered here with the model's own chat template (the same PromptBuilder as the
vLLM backend), so the solution prefix is appended verbatim as the start of the assistant turn and
every MC estimate stays ONE request with `n` samples sharing that prefix in the server's cache.
Requests are limited to `max_concurrency` at a time per server; 429, 5xx, timeouts and dropped
connections are retried with exponential backoff; any other error fails the request with the
server's message.

A fleet (`openai.base_urls`) is several servers of one model. A search tree is keyed by its
question: its first request goes to the live server with the fewest requests in flight, and every
later one to the same server, so the tree's prefixes stay in that server's prefix cache. A server
whose request still fails after two retries (refused, dropped, 5xx) is taken out, counted in
`failures`, and the request and its tree move to another live server; it is tried again after
`retry_down_after_s`. The last live server is never taken out: its errors fail the request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any

from apsgen.config import PolicySpec
from apsgen.models import resolve
from apsgen.policy.base import Generation, Sample, Sampling
from apsgen.policy.prompt import ChatPromptPolicy, PromptBuilder

log = logging.getLogger(__name__)

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_BACKOFF_BASE_S = 0.5
_BACKOFF_MAX_S = 30.0


class ServerError(RuntimeError):
    """A request the server refused or kept failing; the message names the status and reason."""

    def __init__(self, message: str, status: int | None = None, *, server_trouble: bool = False):
        super().__init__(message)
        self.status = status
        self.server_trouble = server_trouble  # the server kept failing (not a refusal of this request)


_MAX_STICKY_TREES = 100_000  # questions remembered for stickiness (the oldest are forgotten)
_FLEET_RETRIES = 2  # retries on one fleet server before its request moves elsewhere


@dataclass
class _Server:
    url: str
    limit: asyncio.Semaphore | None = None
    in_flight: int = 0
    served_model: str | None = None
    ask_token_ids: bool = True
    down_since: float | None = None
    trees: int = 0  # trees assigned here
    requests: int = 0

    def live(self, now: float, retry_after_s: float) -> bool:
        return self.down_since is None or now - self.down_since >= retry_after_s


class OpenAIPolicy(ChatPromptPolicy):
    """Policy backed by an OpenAI-compatible completions endpoint."""

    def __init__(self, spec: PolicySpec, *, verbose: bool = False):
        self.spec = spec
        self.cfg = spec.openai
        self.servers = [_Server(url) for url in self.cfg.urls]
        self.base_url = self.servers[0].url
        self._trees: OrderedDict[str, _Server] = OrderedDict()
        self.failures: Counter[str] = Counter()  # url -> requests that failed there and moved
        self.tokenizer_path, self.name = resolve(spec.model)
        self.revision = spec.revision
        self.verbose = verbose
        self.prompts: PromptBuilder | None = None
        self._tokenizer: Any = None
        self._session: Any = None
        self.retries = 0

    @property
    def served_model(self) -> str | None:
        return next((s.served_model for s in self.servers if s.served_model), None)

    # -- lifecycle ----------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.cfg.api_key_env)
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def start(self) -> None:
        """Load the tokenizer (for the chat template), open the session, find the served model."""
        import aiohttp

        if self._session is not None:
            return
        self._tokenizer = _load_tokenizer(self.tokenizer_path, self.revision)
        self.prompts = PromptBuilder(self.spec.prompt, self._tokenizer)
        timeout = aiohttp.ClientTimeout(total=self.cfg.timeout_s)
        # The connector's own limit matches ours so no request waits inside aiohttp unseen.
        connector = aiohttp.TCPConnector(limit=self.cfg.max_concurrency * len(self.servers))
        self._session = aiohttp.ClientSession(timeout=timeout, connector=connector, headers=self._headers())
        for server in self.servers:
            server.limit = asyncio.Semaphore(self.cfg.max_concurrency)
        errors = []
        for server in self.servers:
            try:
                server.served_model = await self._find_model(server)
                log.info("OpenAI-compatible server %s serves %r", server.url, server.served_model)
            except ServerError as e:
                if len(self.servers) == 1:
                    raise
                errors.append(str(e))
                server.down_since = time.monotonic()
                self.failures[server.url] += 1
                log.warning("fleet server %s left out at start: %s", server.url, e)
        if len(errors) == len(self.servers):
            raise ServerError("no server of the fleet answers: " + "; ".join(errors))

    async def _find_model(self, server: _Server) -> str:
        body = await self._request("GET", "/models", None, server)
        served = [m.get("id") for m in body.get("data", []) if m.get("id")]
        wanted = {self.spec.model, self.tokenizer_path, os.path.basename(self.tokenizer_path.rstrip("/"))}
        for model in served:
            if model in wanted:
                return model
        if len(served) == 1:
            # One model behind the URL (the usual `vllm serve DIR`): it is the one we mean.
            return served[0]
        raise ServerError(
            f"policy.model {self.spec.model!r} is not among the models {server.url} serves ({served}); "
            f"set policy.model to one of them"
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- generation ---------------------------------------------------------------------------

    async def generate(self, question: str, prefix: str, n: int, sampling: Sampling) -> Generation:
        if self._session is None:
            await self.start()
        assert self.prompts is not None
        return await self.generate_text(self.prompts.render(question, prefix), n, sampling, tree=question)

    async def generate_text(self, prompt: str, n: int, sampling: Sampling, tree: str | None = None) -> Generation:
        """n completions of a fully rendered prompt (the judge renders its own with this model's
        template). Requests of one `tree` go to one server of a fleet while it answers."""
        if self._session is None:
            await self.start()
        while True:
            server = self._pick(tree)
            try:
                server.in_flight += 1
                server.requests += 1
                body = await self._complete(self._payload(prompt, n, sampling, server), server)
                return self._generation(body, n, sampling.max_tokens, server)
            except ServerError as e:
                if not e.server_trouble or not self._take_out(server, e):
                    raise
            finally:
                server.in_flight -= 1

    def _live(self) -> list[_Server]:
        now = time.monotonic()
        return [s for s in self.servers if s.live(now, self.cfg.retry_down_after_s)]

    def _pick(self, tree: str | None) -> _Server:
        """The tree's server while it is live, else the live server with the fewest requests in flight."""
        live = self._live() or self.servers
        if tree is not None:
            server = self._trees.get(tree)
            if server is not None and server in live:
                self._trees.move_to_end(tree)
                return server
        server = min(live, key=lambda s: (s.in_flight, s.trees))
        if tree is not None:
            self._trees[tree] = server
            server.trees += 1
            if len(self._trees) > _MAX_STICKY_TREES:
                self._trees.popitem(last=False)
        return server

    def _take_out(self, server: _Server, err: ServerError) -> bool:
        """Take a failing server out when another one is live; False when it is the last."""
        others = [s for s in self._live() if s is not server]
        if not others:
            return False
        self.failures[server.url] += 1
        if server.down_since is None or server.live(time.monotonic(), self.cfg.retry_down_after_s):
            log.warning("fleet server %s taken out (%s); its trees move to %d other server(s)",
                        server.url, err, len(others))
        server.down_since = time.monotonic()
        return True

    def fleet_stats(self) -> dict[str, dict[str, Any]]:
        """Per server: requests sent, trees assigned, failures, and whether it is out now."""
        now = time.monotonic()
        return {s.url: {"requests": s.requests, "trees": s.trees, "failures": self.failures[s.url],
                        "out": not s.live(now, self.cfg.retry_down_after_s)} for s in self.servers}

    def _payload(self, prompt: str, n: int, sampling: Sampling, server: _Server) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": server.served_model or self.served_model,
            "prompt": prompt,
            "n": n,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.stop:
            payload["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            payload["seed"] = sampling.seed
        return payload

    async def _complete(self, payload: dict[str, Any], server: _Server) -> dict[str, Any]:
        if server.ask_token_ids:
            try:
                return await self._request("POST", "/completions", {**payload, "return_token_ids": True}, server)
            except ServerError as e:
                if e.status != 400 or "return_token_ids" not in str(e):
                    raise
                log.info("%s does not take return_token_ids; counting tokens locally", server.url)
                server.ask_token_ids = False
        return await self._request("POST", "/completions", payload, server)

    def _generation(self, body: dict[str, Any], n: int, max_tokens: int, server: _Server) -> Generation:
        choices = sorted(body.get("choices", []), key=lambda c: c.get("index", 0))
        if len(choices) != n:
            raise ServerError(f"{server.url} returned {len(choices)} completions for a request with n={n}")
        usage = body.get("usage") or {}
        samples = []
        for c in choices:
            text = c.get("text") or ""
            truncated = c.get("finish_reason") == "length"
            if c.get("token_ids") is not None:
                n_tokens = len(c["token_ids"])
            elif n == 1 and usage.get("completion_tokens") is not None:
                n_tokens = int(usage["completion_tokens"])
            elif truncated:
                n_tokens = max_tokens
            else:
                # Counted again locally: close, but the server's tokenisation of the text it made may
                # differ by a token or two (and the end-of-text token is not in the text).
                n_tokens = self.count_tokens(text)
            samples.append(Sample(text=text, n_tokens=n_tokens, truncated=truncated))
        return Generation(samples=samples, prompt_tokens=int(usage.get("prompt_tokens") or 0))

    async def _request(self, method: str, path: str, payload: dict[str, Any] | None, server: _Server) -> dict[str, Any]:
        """One HTTP call, retried with backoff on 429/5xx and transport errors."""
        import aiohttp

        assert self._session is not None and server.limit is not None
        url = server.url + path
        max_retries = self.cfg.max_retries if len(self.servers) == 1 else min(self.cfg.max_retries, _FLEET_RETRIES)
        attempt = 0
        while True:
            retry_after: float | None = None
            async with server.limit:
                try:
                    async with self._session.request(method, url, json=payload) as resp:
                        if resp.status == 200:
                            return await resp.json(content_type=None)
                        detail = (await resp.text())[:500]
                        error = ServerError(f"{method} {url}: HTTP {resp.status}: {detail}", resp.status)
                        retryable = resp.status in _RETRY_STATUS
                        retry_after = _retry_after(resp.headers.get("Retry-After"))
                except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as e:
                    error = ServerError(f"{method} {url}: {type(e).__name__}: {e}")
                    retryable = True
            if not retryable or attempt >= max_retries:
                if retryable:
                    raise ServerError(
                        f"{error} (gave up after {attempt + 1} attempts)", error.status, server_trouble=True
                    )
                raise error
            attempt += 1
            self.retries += 1
            delay = retry_after if retry_after is not None else _backoff(attempt)
            log.warning("%s; retry %d/%d in %.1fs", error, attempt, max_retries, delay)
            await asyncio.sleep(delay)


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter, so many waiting requests do not return together."""
    return random.uniform(0, min(_BACKOFF_MAX_S, _BACKOFF_BASE_S * 2 ** (attempt - 1)))


def _retry_after(value: str | None) -> float | None:
    try:
        return min(_BACKOFF_MAX_S, max(0.0, float(value))) if value else None
    except ValueError:  # an HTTP date: fall back to our own backoff
        return None


def _load_tokenizer(path: str, revision: str | None) -> Any:
    try:
        from transformers import AutoTokenizer
    except ImportError as e:
        raise ServerError(
            "the openai backend renders prompts with the model's chat template and needs `transformers` "
            "(pip install 'apsgen[models]')"
        ) from e
    try:
        return AutoTokenizer.from_pretrained(path, revision=revision)
    except Exception as e:
        raise ServerError(
            f"cannot load the tokenizer of policy.model {path!r} ({type(e).__name__}: {e}); point policy.model "
            f"at the served model's folder or Hub id so prompts use its chat template"
        ) from e
