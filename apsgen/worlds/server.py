"""A simulated world behind the OpenAI-compatible completions API, as `vllm serve` answers it.

For tests and for trying the `openai` backend (retries, fleets, a reasoning policy's thinking
section) without a GPU: `python -m apsgen.worlds.server --world reasoning --port 8011`. It answers
`GET /v1/models` and `POST /v1/completions` (`n`, `max_tokens`, `seed`; `return_token_ids` gives a
token per word, the world's token). The prompt the client rendered is read back into (question,
prefix): the prefix is what follows the last assistant header (`--assistant-marker`, ChatML's by
default, or "Answer: " for a prompt without a chat template), the question the last user turn.
Never a real backend; nothing in the data path imports it.
"""

from __future__ import annotations

import argparse
import logging
import re
from typing import Any

from apsgen.policy.base import Sampling

log = logging.getLogger(__name__)

CHATML_ASSISTANT = "<|im_start|>assistant\n"
_CHATML_USER = re.compile(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", re.S)
_PLAIN = re.compile(r"Question: (.*?)\nAnswer: ", re.S)


def split_prompt(prompt: str, assistant_marker: str = CHATML_ASSISTANT) -> tuple[str, str]:
    """(question, prefix) of a prompt the client rendered; ValueError when it holds neither form."""
    at = prompt.rfind(assistant_marker)
    if at >= 0:
        users = _CHATML_USER.findall(prompt[:at])
        if users:
            return users[-1], prompt[at + len(assistant_marker):]
    plain = list(_PLAIN.finditer(prompt))
    if plain:
        last = plain[-1]
        return last.group(1), prompt[last.end():]
    raise ValueError("the prompt holds no user turn and assistant header the server knows "
                     f"(assistant marker {assistant_marker!r}, or 'Question: ... Answer: ')")


def make_policy(world: str, recover: float, seed: int) -> Any:
    from apsgen.worlds import reasoning, story

    if world == "reasoning":
        return reasoning.ReasoningWorldPolicy(reasoning.ReasoningWorldSpec(recover_mean=recover), seed=seed)
    if world == "story":
        return story.StoryWorldPolicy(story.StoryWorldSpec(recover_mean=recover), seed=seed)
    raise ValueError(f"unknown world {world!r}: reasoning or story")


def make_app(policy: Any, model: str, assistant_marker: str = CHATML_ASSISTANT) -> Any:
    from aiohttp import web

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": model, "object": "model"}]})

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            question, prefix = split_prompt(str(body["prompt"]), assistant_marker)
            n = int(body.get("n", 1))
            sampling = Sampling(temperature=float(body.get("temperature", 0.7)), max_tokens=int(body.get("max_tokens", 16)),
                                seed=body.get("seed"))
            gen = await policy.generate(question, prefix, n, sampling)
        except (KeyError, ValueError, TypeError) as e:
            return web.json_response({"error": {"message": str(e), "type": "BadRequestError"}}, status=400)
        choices = []
        for i, s in enumerate(gen.samples):
            choice: dict[str, Any] = {"index": i, "text": s.text, "finish_reason": "length" if s.truncated else "stop"}
            if body.get("return_token_ids"):
                choice["token_ids"] = [0] * s.n_tokens
            choices.append(choice)
        usage = {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.generated_tokens,
                 "total_tokens": gen.prompt_tokens + gen.generated_tokens}
        return web.json_response({"object": "text_completion", "model": model, "choices": choices, "usage": usage})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/completions", completions)
    return app


def main(argv: list[str] | None = None) -> int:
    from aiohttp import web

    p = argparse.ArgumentParser(prog="python -m apsgen.worlds.server", description=__doc__.split("\n\n")[0])
    p.add_argument("--world", default="reasoning", choices=("reasoning", "story"))
    p.add_argument("--recover", type=float, default=0.1, help="the world's mean silent recovery (default 0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="world", help="the served model's name (default world)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8011)
    p.add_argument("--assistant-marker", default=CHATML_ASSISTANT)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    app = make_app(make_policy(args.world, args.recover, args.seed), args.model, args.assistant_marker)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=lambda *a: log.info("serving the %s world on %s:%d",
                                                                                 args.world, args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
