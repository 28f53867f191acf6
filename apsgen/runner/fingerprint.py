"""The settings fingerprint: what must match for two runs' rows to mean the same thing."""

from __future__ import annotations

import hashlib
import json

from apsgen.config import JobSpec
from apsgen.label import LABEL_ENGINE


def label_settings(spec: JobSpec) -> dict:
    """Every setting that shapes a label (search, steps, label rule, calibration), the policy,
    sampling and verifier, and the label engine's version (code that decides differently is a
    different meaning). Not the dataset (a nightly build adds problems to the same output), not
    where or how fast it runs."""
    policy = spec.policy.model_dump(exclude={"engine", "openai"})
    policy["dtype"] = spec.policy.engine.dtype
    if spec.policy.backend != "simulated":
        policy.pop("simulated")
    if not policy["prompt"]["chat_template_kwargs"]:  # absent: fingerprints stay as before
        policy["prompt"].pop("chat_template_kwargs")
    # search, steps, label, calibration; reasoning only when on (off: fingerprints stay as before)
    labelling = spec.labelling().model_dump(exclude=None if spec.reasoning.enabled else {"reasoning"})
    settings = {
        **labelling,
        "label_engine": LABEL_ENGINE,
        "policy": policy,
        "sampling": spec.sampling.model_dump(),
        "verify": spec.verify.model_dump(exclude={"workers"}),
        "seed": spec.seed,
        "answer_format": spec.dataset.answer_format,
    }
    if spec.judge is not None:  # its verdicts are in the rows (absent: fingerprints stay as before)
        settings["judge"] = spec.judge.model_dump(exclude={"engine", "openai"})
    return settings


def fingerprint(spec: JobSpec) -> str:
    settings = label_settings(spec)
    if spec.runner.keep_rollouts:  # an output holds every problem's rollouts or none (absent: as before)
        settings["keep_rollouts"] = True
    blob = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
