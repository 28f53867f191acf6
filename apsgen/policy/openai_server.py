"""The OpenAI-compatible server backend: `vllm serve`, SGLang or a hosted endpoint, reached through
the completions API.

The prompt is rendered here with the model's own chat template (the same PromptBuilder as the
vLLM backend), so the solution prefix is appended verbatim as the start of the assistant turn and
every MC estimate stays ONE request with `n` samples sharing that prefix in the server's cache.
Requests are limited to `max_concurrency` at a time; 429, 5xx, timeouts and dropped connections
are retried with exponential backoff; any other error fails the request with the server's message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
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

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class OpenAIPolicy(ChatPromptPolicy):
    """Policy backed by an OpenAI-compatible completions endpoint."""

    def __init__(self, spec: PolicySpec, *, verbose: bool = False):
        self.spec = spec
        self.cfg = spec.openai
        self.base_url = self.cfg.base_url.rstrip("/")
        self.tokenizer_path, self.name = resolve(spec.model)
        self.revision = spec.revision
        self.verbose = verbose
        self.served_model: str | None = None
        self.prompts: PromptBuilder | None = None
        self._tokenizer: Any = None
        self._session: Any = None
        self._limit: asyncio.Semaphore | None = None
        # vLLM returns each sample's token ids on request (exact n_tokens); other servers may
        # reject the unknown field, in which case we stop sending it and count tokens locally.
        self._ask_token_ids = True
        self.retries = 0

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
        connector = aiohttp.TCPConnector(limit=self.cfg.max_concurrency)
        self._session = aiohttp.ClientSession(timeout=timeout, connector=connector, headers=self._headers())
        self._limit = asyncio.Semaphore(self.cfg.max_concurrency)
        self.served_model = await self._find_model()
        log.info("OpenAI-compatible server %s serves %r", self.base_url, self.served_model)

    async def _find_model(self) -> str:
        body = await self._request("GET", "/models", None)
        served = [m.get("id") for m in body.get("data", []) if m.get("id")]
        wanted = {self.spec.model, self.tokenizer_path, os.path.basename(self.tokenizer_path.rstrip("/"))}
        for model in served:
            if model in wanted:
                return model
        if len(served) == 1:
            # One model behind the URL (the usual `vllm serve DIR`): it is the one we mean.
            return served[0]
        raise ServerError(
            f"policy.model {self.spec.model!r} is not among the models {self.base_url} serves ({served}); "
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
        return await self.generate_text(self.prompts.render(question, prefix), n, sampling)

    async def generate_text(self, prompt: str, n: int, sampling: Sampling) -> Generation:
        """n completions of a fully rendered prompt (the judge renders its own with this model's template)."""
        if self._session is None:
            await self.start()
        payload: dict[str, Any] = {
            "model": self.served_model,
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
        body = await self._complete(payload)
        return self._generation(body, n, sampling.max_tokens)

    async def _complete(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self._ask_token_ids:
            try:
                return await self._request("POST", "/completions", {**payload, "return_token_ids": True})
            except ServerError as e:
                if e.status != 400 or "return_token_ids" not in str(e):
                    raise
                log.info("%s does not take return_token_ids; counting tokens locally", self.base_url)
                self._ask_token_ids = False
        return await self._request("POST", "/completions", payload)

    def _generation(self, body: dict[str, Any], n: int, max_tokens: int) -> Generation:
        choices = sorted(body.get("choices", []), key=lambda c: c.get("index", 0))
        if len(choices) != n:
            raise ServerError(f"{self.base_url} returned {len(choices)} completions for a request with n={n}")
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

    async def _request(self, method: str, path: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        """One HTTP call, retried with backoff on 429/5xx and transport errors."""
        import aiohttp

        assert self._session is not None and self._limit is not None
        url = self.base_url + path
        attempt = 0
        while True:
            retry_after: float | None = None
            async with self._limit:
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
            if not retryable or attempt >= self.cfg.max_retries:
                if retryable:
                    raise ServerError(f"{error} (gave up after {attempt + 1} attempts)", error.status)
                raise error
            attempt += 1
            self.retries += 1
            delay = retry_after if retry_after is not None else _backoff(attempt)
            log.warning("%s; retry %d/%d in %.1fs", error, attempt, self.cfg.max_retries, delay)
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
