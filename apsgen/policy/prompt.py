"""Turning (question, solution prefix) into the model's input text.

The prefix is appended verbatim as the start of the assistant turn (the chat template's
"continue the final message"), so a completion continues exactly the text that was labelled.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from apsgen.config import PromptSpec


def messages_for(prompt: PromptSpec, question: str) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": prompt.system}] if prompt.system else []
    for q, a in prompt.few_shot:
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    msgs.append({"role": "user", "content": question})
    return msgs


def template_hash(prompt: PromptSpec, chat_template: str | None) -> str:
    """Provenance: changes when the instruction, the few-shot examples or the template change."""
    dumped = prompt.model_dump()
    if not dumped["chat_template_kwargs"]:  # absent: the hash stays as it was before the setting
        dumped.pop("chat_template_kwargs")
    blob = json.dumps({"prompt": dumped, "chat_template": chat_template}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class PromptBuilder:
    """Renders prompts with a tokenizer's chat template (or plain text when there is none)."""

    def __init__(self, prompt: PromptSpec, tokenizer: Any | None):
        self.prompt = prompt
        self.tokenizer = tokenizer
        template = getattr(tokenizer, "chat_template", None) if tokenizer is not None else None
        self.use_chat = bool(prompt.use_chat_template and template)
        self.hash = template_hash(prompt, template if self.use_chat else None)
        self._head_cache: dict[str, str] = {}

    def head(self, question: str) -> str:
        """Everything before the assistant's text: the same for every prefix of one question."""
        cached = self._head_cache.get(question)
        if cached is not None:
            return cached
        msgs = messages_for(self.prompt, question)
        if self.use_chat:
            # The template's own switches (Qwen3's enable_thinking) go in as template variables.
            text = self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True,
                                                      **self.prompt.chat_template_kwargs)
        else:
            parts = [self.prompt.system] if self.prompt.system else []
            for q, a in self.prompt.few_shot:
                parts.append(f"Question: {q}\nAnswer: {a}")
            parts.append(f"Question: {question}\nAnswer: ")
            text = "\n\n".join(parts)
        if len(self._head_cache) > 4096:  # one entry per question in flight is all that is useful
            self._head_cache.clear()
        self._head_cache[question] = text
        return text

    def render(self, question: str, prefix: str) -> str:
        # The generation prompt ends the template's text where the assistant's content begins, so
        # appending the prefix is the same as continuing a final assistant message holding it.
        return self.head(question) + prefix


class ChatPromptPolicy:
    """What the model-backed policies share: a PromptBuilder made at start(), its provenance hash,
    and token counts with the model's own tokenizer."""

    prompts: PromptBuilder | None = None

    @property
    def template_hash(self) -> str:
        assert self.prompts is not None, "start() first"
        return self.prompts.hash

    def count_tokens(self, text: str) -> int:
        assert self.prompts is not None and self.prompts.tokenizer is not None, "start() first"
        return len(self.prompts.tokenizer.encode(text, add_special_tokens=False))
