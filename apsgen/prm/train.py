"""`apsgen train prm`: fine-tune a PRM on a `stepwise` export with a plain `transformers` Trainer.

The base model gets a 2-label token-classification head (0 wrong step, 1 correct step). A row is
laid out as the export documents and `apsgen.prm.score` reads it back (two layouts):

- `separator` (default): the tokenizer's BOS if it has one, the problem, then each step followed by
  the separator (default "\\n"); a step's label sits on the last token of its separator (the layout
  TRL 1.x's PRMTrainer used, so folders trained either way score alike);
- `qwen`: the Qwen2.5-Math-PRM layout: the chat template with Qwen's system prompt, the problem as
  the user turn, the steps joined by `<extra_0>` (added to the tokenizer if it lacks it); a step's
  label sits on its `<extra_0>`.

Labels are `hard` (cross-entropy on the stored verdict) or `soft` (cross-entropy on the export's
`soft_labels`, a probability that the step is right: binary cross-entropy between the two logits'
softmax and that target; see `apsgen.paths.soft_label` for what it is and why). A row longer than
`max_length` is cut before the first step that does not fit. A seeded held-out slice is scored
before and after training, never trained on; checkpoints are written every `save_steps` and a run
started again with `resume` continues from the last one. The trained folder carries
`apsgen_prm.json` (layout, separator, labels, base model, data and figures), which
`apsgen eval processbench --prm` reads so the model is scored as it was trained.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from apsgen.prm.score import QWEN_STEP_TOKEN, QWEN_SYSTEM, TRAINED_INFO, PRMError

log = logging.getLogger(__name__)

REQUIRED = ("prompt", "completions", "labels")
IGNORE = -100.0


@dataclass(frozen=True)
class TrainSettings:
    max_steps: int = 200
    learning_rate: float = 2e-5
    batch_size: int = 4
    grad_accumulation: int = 1
    max_length: int = 1024
    separator: str = "\n"
    held_out: int = 32  # rows scored before and after, never trained on
    seed: int = 0
    train_on_last_step_only: bool = False
    logging_steps: int = 5
    labels: Literal["hard", "soft"] = "hard"
    layout: Literal["separator", "qwen"] = "separator"
    save_steps: int = 50  # a checkpoint this often (0: none)
    resume: bool = False  # continue from the output's last checkpoint


@dataclass
class TrainReport:
    output: str
    base_model: str
    data: str
    rows: int
    held_out: int
    steps: int
    held_out_loss_before: float
    held_out_loss_after: float
    train_losses: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    resumed_from: str | None = None

    def render(self) -> str:
        resumed = f", resumed from {self.resumed_from}" if self.resumed_from else ""
        return (
            f"trained {self.output} from {self.base_model} on {self.rows - self.held_out} of the {self.rows} rows of "
            f"{self.data} ({self.held_out} held out, never trained on), {self.steps} steps with "
            f"{self.settings.get('labels', 'hard')} labels in {self.elapsed_s:.0f} s{resumed}\n"
            f"held-out loss {self.held_out_loss_before:.4f} -> {self.held_out_loss_after:.4f}"
        )


def _data_files(path: Path) -> list[str]:
    if path.is_file():
        return [str(path)]
    for folder in (path / "stepwise", path):
        files = sorted(str(f) for f in folder.glob("*.parquet")) if folder.is_dir() else []
        if files:
            return files
    raise PRMError(f"no stepwise export in {str(path)!r}: run `apsgen export OUT --format stepwise` and give its folder")


def load_rows(path: str | Path, labels: str = "hard"):  # -> datasets.Dataset
    """The stepwise rows of an export folder (or one Parquet file), checked for what training
    needs: the columns, the label types, one label per step (a PRMError names the file, the row and
    the field)."""
    import datasets

    files = _data_files(Path(path).expanduser())
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
    wanted = REQUIRED + (("soft_labels",) if labels == "soft" else ())
    missing = [c for c in wanted if c not in ds.column_names]
    if missing:
        raise PRMError(f"{path}: not a stepwise export with {', '.join(wanted)} (no column {', '.join(missing)}); "
                       "export with --format stepwise" + (" from a current apsgen (soft_labels)" if labels == "soft" else ""))
    column = "soft_labels" if labels == "soft" else "labels"
    inner = getattr(ds.features[column], "feature", None)
    dtype = getattr(inner, "dtype", None)
    if labels == "hard" and dtype != "bool":
        raise PRMError(f"{path}: 'labels' are {dtype or ds.features[column]}, not bool; hard labels are one bool per "
                       "step (train on soft targets with --labels soft)")
    if labels == "soft" and dtype not in ("float32", "float64"):
        raise PRMError(f"{path}: 'soft_labels' are {dtype or ds.features[column]}, not floats in [0, 1]")
    if ds.num_rows == 0:
        raise PRMError(f"{path}: the export has no rows")
    for i, row in enumerate(ds.select_columns(["completions", column])):
        steps, targets = row["completions"], row[column]
        if steps is None or targets is None or len(steps) != len(targets) or not steps:
            raise PRMError(f"{path} row {i}: {len(steps or [])} completions but {len(targets or [])} {column}")
        if labels == "soft" and not all(t is not None and 0.0 <= t <= 1.0 for t in targets):
            raise PRMError(f"{path} row {i}: {column} {targets!r} are not probabilities in [0, 1]")
    return ds.select_columns(["prompt", "completions", column]).rename_column(column, "targets")


def resolve_base(model: str) -> str:
    """A base model folder: a named model apsgen prepares (e.g. smollm2-135m), a folder, or a Hub id."""
    from apsgen.models import KNOWN_MODELS, prepare

    if model in KNOWN_MODELS:
        return str(prepare(model))
    return model


class RowEncoder:
    """One stepwise row as (input ids, a target per token: the step's label at its score position,
    IGNORE elsewhere), in the layout the PRM is scored in (`apsgen.prm.score`)."""

    def __init__(self, tokenizer: Any, settings: TrainSettings) -> None:
        self.tok, self.s = tokenizer, settings
        self.sep = tokenizer(settings.separator, add_special_tokens=False)["input_ids"]
        if settings.layout == "separator" and not self.sep:
            raise PRMError(f"the separator {settings.separator!r} encodes to no token")

    def __call__(self, prompt: str, steps: list[str], targets: list[float]) -> dict[str, list]:
        if self.s.layout == "qwen":
            ids, positions = self._qwen(prompt, steps)
        else:
            tok = self.tok
            ids = [tok.bos_token_id] if tok.bos_token_id is not None else []
            ids += tok(prompt, add_special_tokens=False)["input_ids"]
            positions = []
            for step in steps:
                ids += tok(step, add_special_tokens=False)["input_ids"] + self.sep
                positions.append(len(ids) - 1)
        labels = [IGNORE] * len(ids)
        kept = [(p, t) for p, t in zip(positions, targets) if p < self.s.max_length]
        if self.s.train_on_last_step_only:
            kept = kept[-1:]
        for p, t in kept:
            labels[p] = float(t)
        return {"input_ids": ids[: self.s.max_length], "labels": labels[: self.s.max_length]}

    def _qwen(self, prompt: str, steps: list[str]) -> tuple[list[int], list[int]]:
        tok = self.tok
        sep_id = tok.convert_tokens_to_ids(QWEN_STEP_TOKEN)
        clean = [s.replace(QWEN_STEP_TOKEN, "") for s in steps]
        messages = [{"role": "system", "content": QWEN_SYSTEM},
                    {"role": "user", "content": prompt.replace(QWEN_STEP_TOKEN, "")},
                    {"role": "assistant", "content": QWEN_STEP_TOKEN.join(clean) + QWEN_STEP_TOKEN}]
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        return ids, [i for i, t in enumerate(ids) if t == sep_id]


def _collate(pad_id: int):  # type: ignore[no-untyped-def]
    import torch

    def collate(batch: list[dict[str, list]]) -> dict[str, Any]:
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.float32)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, :n] = torch.tensor(b["input_ids"])
            mask[i, :n] = 1
            labels[i, :n] = torch.tensor(b["labels"])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    return collate


def step_loss(logits: Any, labels: Any) -> Any:
    """Cross-entropy at the score positions between the two labels' softmax and each target, the
    probability that the step is right (1 or 0 for hard labels: the usual cross-entropy; a
    probability for soft ones: binary cross-entropy on the logits' margin). Positions marked IGNORE
    take no part."""
    import torch

    at = labels != IGNORE
    if not bool(at.any()):
        return logits.sum() * 0.0
    margin = (logits[..., 1] - logits[..., 0])[at].float()
    return torch.nn.functional.binary_cross_entropy_with_logits(margin, labels[at].float())


def _trainer_class():  # type: ignore[no-untyped-def]
    from transformers import Trainer

    class StepTrainer(Trainer):
        """A Trainer whose loss is `step_loss` (hard or soft targets alike)."""

        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):  # type: ignore[no-untyped-def]
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            loss = step_loss(outputs.logits, labels)
            return (loss, outputs) if return_outputs else loss

    return StepTrainer


def _check(s: TrainSettings) -> None:
    if s.max_steps < 1 or s.batch_size < 1 or s.grad_accumulation < 1 or s.max_length < 8 or s.save_steps < 0:
        raise PRMError(f"training settings out of range: {s}")
    if s.layout == "separator" and not s.separator:
        raise PRMError("the step separator is empty")
    if s.labels not in ("hard", "soft") or s.layout not in ("separator", "qwen"):
        raise PRMError(f"labels {s.labels!r} / layout {s.layout!r}: expected hard or soft / separator or qwen")


def _model_and_tokenizer(base: str, s: TrainSettings):  # type: ignore[no-untyped-def]
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForTokenClassification.from_pretrained(
            base, num_labels=2, id2label={0: "wrong", 1: "correct"}, label2id={"wrong": 0, "correct": 1})
    except (OSError, ValueError) as e:
        raise PRMError(f"base model {base!r}: cannot load it with a token-classification head ({e})") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if s.layout == "qwen":
        if getattr(tokenizer, "chat_template", None) is None:
            raise PRMError(f"base model {base!r}: the qwen layout needs a tokenizer with a chat template")
        if tokenizer.convert_tokens_to_ids(QWEN_STEP_TOKEN) in (None, tokenizer.unk_token_id):
            tokenizer.add_special_tokens({"additional_special_tokens": [QWEN_STEP_TOKEN]})
            model.resize_token_embeddings(len(tokenizer))
    return model, tokenizer


# Settings a resumed run may change: how long it runs, and that it resumes.
RESUMABLE = ("max_steps", "resume", "logging_steps", "save_steps")
RUN_FILE = "apsgen_run.json"


def _same_run(checkpoints: Path, run: dict[str, Any], resuming: bool) -> None:
    """Record what the checkpoints are of; a resumed run must be the same data, base and settings
    (a PRMError names each difference), or its checkpoints would mix two trainings."""
    record = checkpoints / RUN_FILE
    kept = {k: v for k, v in run.items() if k not in RESUMABLE}
    if resuming and record.is_file():
        before = {k: v for k, v in json.loads(record.read_text()).items() if k not in RESUMABLE}
        changed = [f"{k}: {before.get(k)!r} in the checkpoints, {kept.get(k)!r} now"
                   for k in sorted(set(before) | set(kept)) if before.get(k) != kept.get(k)]
        if changed:
            raise PRMError(f"--resume from {checkpoints}: a different training ({'; '.join(changed)}); "
                           "resume with the same data and settings, or train into a new --output")
    checkpoints.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(kept, sort_keys=True) + "\n")


def train_prm(data: str | Path, base_model: str, output: str | Path, settings: TrainSettings | None = None) -> TrainReport:
    s = settings or TrainSettings()
    _check(s)
    try:
        import torch
        from transformers import TrainingArguments
        from transformers.trainer_utils import get_last_checkpoint
    except ImportError as e:
        raise PRMError(f"training needs torch and transformers ({e}); install them with pip install 'apsgen[train]'") from None
    t0 = time.perf_counter()
    rows = load_rows(data, s.labels)
    if rows.num_rows < 2:
        n = rows.num_rows
        raise PRMError(f"{data}: {n} row{'' if n == 1 else 's'}: at least 2 are needed (one held out, the rest trained on)")
    split = rows.train_test_split(test_size=min(s.held_out, max(1, rows.num_rows // 5)), seed=s.seed, shuffle=True)
    base = resolve_base(base_model)
    torch.manual_seed(s.seed)
    model, tokenizer = _model_and_tokenizer(base, s)
    encode = RowEncoder(tokenizer, s)

    def encoded(ds):  # type: ignore[no-untyped-def]
        return ds.map(lambda r: encode(r["prompt"], r["completions"], r["targets"]),
                      remove_columns=ds.column_names, desc="tokenizing")

    train, held = encoded(split["train"]), encoded(split["test"])
    out = Path(output).expanduser()
    checkpoints = out / "checkpoints"
    resume_from = get_last_checkpoint(str(checkpoints)) if s.resume and checkpoints.is_dir() else None
    if s.resume and resume_from is None:
        log.info("no checkpoint in %s: training from the start", checkpoints)
    _same_run(checkpoints, {"data": str(data), "base_model": base_model, **asdict(s)}, resume_from is not None)
    args = TrainingArguments(
        output_dir=str(checkpoints), max_steps=s.max_steps, per_device_train_batch_size=s.batch_size,
        per_device_eval_batch_size=s.batch_size, gradient_accumulation_steps=s.grad_accumulation,
        learning_rate=s.learning_rate, logging_steps=s.logging_steps,
        save_strategy="steps" if s.save_steps else "no", save_steps=s.save_steps or 500, save_total_limit=2,
        report_to=[], seed=s.seed, data_seed=s.seed, use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0, remove_unused_columns=False,
    )
    trainer = _trainer_class()(model=model, args=args, train_dataset=train, eval_dataset=held,
                                data_collator=_collate(tokenizer.pad_token_id))
    before = float(trainer.evaluate()["eval_loss"])
    trainer.train(resume_from_checkpoint=resume_from)
    after = float(trainer.evaluate()["eval_loss"])
    if not (math.isfinite(before) and math.isfinite(after)):
        raise PRMError(f"training diverged: held-out loss {before} -> {after}; lower --lr")
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
    report = TrainReport(
        output=str(out), base_model=base_model, data=str(data), rows=rows.num_rows, held_out=held.num_rows,
        steps=int(trainer.state.global_step), held_out_loss_before=before, held_out_loss_after=after,
        train_losses=losses, elapsed_s=time.perf_counter() - t0, settings=asdict(s), resumed_from=resume_from,
    )
    (out / TRAINED_INFO).write_text(json.dumps(asdict(report), indent=2, sort_keys=True) + "\n")
    return report
