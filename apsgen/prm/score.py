"""Scoring the steps of a solution with a process reward model.

Two layouts, told apart by the folder's `config.json`:

- **token classification** (`*ForTokenClassification`, 2 labels): what TRL's `PRMTrainer` (and
  `apsgen train`) saves. The input is laid out as TRL tokenizes a training row: the tokenizer's BOS
  if it has one, the problem, then each step followed by the step separator (default "\\n"); a
  step's score is read at the last token of its separator. The separator must be the one the
  model was trained with.
- **Qwen2.5-Math-PRM** (`*ForProcessRewardModel`, code shipped with the weights, so it loads only
  with `trust_remote_code`): the chat template with Qwen's system prompt, the problem as the user
  turn and the steps joined by `<extra_0>` (and ended by one) as the assistant turn; a step's
  score is read at its `<extra_0>`.

Either way the score is the softmax probability of label 1 ("correct") at that position.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
QWEN_STEP_TOKEN = "<extra_0>"
# Characters per token no tokenizer goes above; a text longer than this many characters per token of
# context is too long without tokenizing it (model output can be megabytes).
_MAX_CHARS_PER_TOKEN = 32

Layout = Literal["token-classification", "qwen-prm"]


TRAINED_INFO = "apsgen_prm.json"  # what `apsgen train prm` writes beside the weights: how it was trained


def trained_info(folder: str | Path) -> dict[str, Any]:
    """The settings an `apsgen train` folder was trained with (empty when it says nothing)."""
    info = Path(folder).expanduser() / TRAINED_INFO
    try:
        return dict(json.loads(info.read_text())["settings"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def trained_separator(folder: str | Path) -> str | None:
    """The step separator an `apsgen train` folder was trained with, if it says."""
    return trained_info(folder).get("separator")


class PRMError(ValueError):
    """A folder that is not a PRM apsgen can score with, with what is wrong and what to do."""


class TooLong(ValueError):
    """An item longer than the model's context: counted and skipped, never truncated into a score."""

    def __init__(self, n_tokens: int | None, limit: int) -> None:
        self.n_tokens, self.limit = n_tokens, limit
        got = f"{n_tokens} tokens" if n_tokens is not None else "far more tokens"
        super().__init__(f"{got}, over the model's context of {limit}")


def _read_config(path: Path) -> dict[str, Any]:
    cfg = path / "config.json"
    if not path.is_dir():
        raise PRMError(f"PRM {str(path)!r}: not a folder (give the folder a trainer saved, with config.json)")
    if not cfg.is_file():
        raise PRMError(f"PRM {str(path)!r}: no config.json in the folder")
    try:
        data = json.loads(cfg.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PRMError(f"PRM {str(path)!r}: config.json is unreadable ({e})") from None
    if not isinstance(data, dict):
        raise PRMError(f"PRM {str(path)!r}: config.json is not an object")
    return data


def layout_of(path: str | Path, *, trust_remote_code: bool = False) -> Layout:
    """Which layout the folder's model uses, or a PRMError saying why it is not a PRM."""
    p = Path(path)
    cfg = _read_config(p)
    archs = [str(a) for a in cfg.get("architectures") or []]
    if any(a.endswith("ForProcessRewardModel") for a in archs):
        if not trust_remote_code:
            raise PRMError(
                f"PRM {str(path)!r} ({', '.join(archs)}) runs code shipped with its weights; pass "
                "--trust-remote-code to load it (read that code first)"
            )
        return "qwen-prm"
    if any(a.endswith("ForTokenClassification") for a in archs):
        labels = cfg.get("num_labels") or len(cfg.get("id2label") or {}) or 2
        if labels != 2:
            raise PRMError(
                f"PRM {str(path)!r}: its token-classification head has {labels} labels; a PRM has 2 "
                "(0 wrong step, 1 correct step)"
            )
        return "token-classification"
    raise PRMError(
        f"{str(path)!r} is not a PRM: its architecture ({', '.join(archs) or 'none given'}) has no "
        "token-classification head. Train one on an export first (`apsgen train prm`), or give a "
        "Qwen2.5-Math-PRM folder with --trust-remote-code"
    )


@dataclass
class PRM:
    """A loaded PRM: `score(problem, steps)` gives one probability of "correct" per step."""

    model: Any
    tokenizer: Any
    layout: Layout
    separator: str
    max_length: int
    device: str
    name: str = ""

    def encode(self, problem: str, steps: list[str] | tuple[str, ...]) -> tuple[list[int], list[int]]:
        """The input ids and, per step, the position its score is read at."""
        limit_chars = self.max_length * _MAX_CHARS_PER_TOKEN
        if len(problem) + sum(len(s) for s in steps) > limit_chars:
            raise TooLong(None, self.max_length)
        tok = self.tokenizer
        if self.layout == "qwen-prm":
            return self._encode_qwen(problem, steps)
        ids: list[int] = [tok.bos_token_id] if tok.bos_token_id is not None else []
        ids += tok(problem, add_special_tokens=False)["input_ids"]
        sep = tok(self.separator, add_special_tokens=False)["input_ids"]
        positions = []
        for step in steps:
            ids += tok(step, add_special_tokens=False)["input_ids"] + sep
            positions.append(len(ids) - 1)
        return ids, positions

    def _encode_qwen(self, problem: str, steps: list[str] | tuple[str, ...]) -> tuple[list[int], list[int]]:
        tok = self.tokenizer
        sep_id = tok.convert_tokens_to_ids(QWEN_STEP_TOKEN)
        if sep_id is None or sep_id == tok.unk_token_id:
            raise PRMError(f"PRM {self.name!r}: its tokenizer has no {QWEN_STEP_TOKEN} token")
        # A step that writes the marker itself would add a score position; it is text, not a marker.
        clean = [s.replace(QWEN_STEP_TOKEN, "") for s in steps]
        messages = [
            {"role": "system", "content": QWEN_SYSTEM},
            {"role": "user", "content": problem.replace(QWEN_STEP_TOKEN, "")},
            {"role": "assistant", "content": QWEN_STEP_TOKEN.join(clean) + QWEN_STEP_TOKEN},
        ]
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        positions = [i for i, t in enumerate(ids) if t == sep_id]
        if len(positions) != len(steps):
            raise PRMError(f"PRM {self.name!r}: the chat template kept {len(positions)} of {len(steps)} step markers")
        return ids, positions

    def score(self, problem: str, steps: list[str] | tuple[str, ...]) -> list[float]:
        """P(correct) of each step, in order. Raises TooLong for an input over the model's context."""
        import torch

        ids, positions = self.encode(problem, steps)
        if len(ids) > self.max_length:
            raise TooLong(len(ids), self.max_length)
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], device=self.device))
            logits = out.logits if hasattr(out, "logits") else out[0]
            probs = torch.softmax(logits[0, positions].float(), dim=-1)[:, 1]
        return [float(x) for x in probs.cpu()]


def context_of(model: Any, tokenizer: Any) -> int:
    cfg = model.config
    limit = getattr(cfg, "max_position_embeddings", None) or 0
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_limit, int) and 0 < tok_limit < 10**7:  # tokenizers say 1e30 when they do not know
        limit = min(limit, tok_limit) if limit else tok_limit
    return int(limit) or 2048


def load_prm(
    path: str | Path,
    *,
    separator: str = "\n",
    max_length: int | None = None,
    trust_remote_code: bool = False,
    device: str = "auto",
) -> PRM:
    """Load a PRM folder for scoring (a PRMError names what is wrong with a folder that is not one)."""
    p = Path(path).expanduser()
    layout = layout_of(p, trust_remote_code=trust_remote_code)
    # A token-classification model `apsgen train` trained in Qwen's layout is read in that layout.
    encoding: Layout = "qwen-prm" if trained_info(p).get("layout") == "qwen" else layout
    import torch
    from transformers import AutoModel, AutoModelForTokenClassification, AutoTokenizer

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(p), trust_remote_code=trust_remote_code)
    except Exception as e:  # noqa: BLE001 - transformers raises many types; the user needs the folder and cause
        raise PRMError(f"PRM {str(p)!r}: no usable tokenizer in the folder ({e})") from None
    if layout == "qwen-prm":
        model = AutoModel.from_pretrained(str(p), trust_remote_code=True, dtype=dtype)
    else:
        model = AutoModelForTokenClassification.from_pretrained(str(p), dtype=dtype)
    model.to(device).eval()
    limit = max_length or context_of(model, tokenizer)
    if max_length is not None and max_length < 1:
        raise PRMError(f"--max-length {max_length}: expected a positive number of tokens")
    if not separator:
        raise PRMError("the step separator is empty; use the one the PRM was trained with (TRL's default is '\\n')")
    return PRM(model=model, tokenizer=tokenizer, layout=encoding, separator=separator, max_length=limit,
               device=device, name=str(p))
