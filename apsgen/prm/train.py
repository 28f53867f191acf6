"""`apsgen train prm`: fine-tune a PRM on a `stepwise` export with TRL 1.9's `PRMTrainer`.

The base model gets a 2-label token-classification head (0 wrong step, 1 correct step); each step of
a row is tokenized as TRL does (the step, then the separator; the label sits on the separator's last
token). Labels must be hard: TRL casts each label with `int()`, so a soft label of 0.8 would train
as 0. A held-out slice of the rows (seeded) is scored before and after training, so the report says
whether the loss fell on rows the trainer did not step on. The trained folder carries
`apsgen_prm.json` (the separator, base model, data and figures), which `apsgen eval processbench
--prm` reads so the model is scored with the separator it was trained with.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from apsgen.prm.score import PRMError

log = logging.getLogger(__name__)

TRAINED_INFO = "apsgen_prm.json"
REQUIRED = ("prompt", "completions", "labels")


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

    def render(self) -> str:
        return (
            f"trained {self.output} from {self.base_model} on {self.rows - self.held_out} of the {self.rows} rows of "
            f"{self.data} ({self.held_out} held out, never trained on), {self.steps} steps in {self.elapsed_s:.0f} s\n"
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


def load_rows(path: str | Path):  # -> datasets.Dataset
    """The stepwise rows of an export folder (or one Parquet file), checked for what TRL needs."""
    import datasets

    files = _data_files(Path(path).expanduser())
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
    missing = [c for c in REQUIRED if c not in ds.column_names]
    if missing:
        raise PRMError(f"{path}: not a stepwise export (no column {', '.join(missing)}); export with --format stepwise")
    label_type = ds.features["labels"]
    inner = getattr(label_type, "feature", None)
    if getattr(inner, "dtype", None) != "bool":
        raise PRMError(
            f"{path}: labels are {getattr(inner, 'dtype', label_type)}, not bool. TRL's PRMTrainer casts each "
            "label with int(), so a soft label of 0.8 trains as 0; export hard labels (the stepwise format, "
            "or --threshold T to relabel from MC)"
        )
    if ds.num_rows == 0:
        raise PRMError(f"{path}: the export has no rows")
    return ds.remove_columns([c for c in ds.column_names if c not in REQUIRED])


def resolve_base(model: str) -> str:
    """A base model folder: a named model apsgen prepares (e.g. smollm2-135m), a folder, or a Hub id."""
    from apsgen.models import KNOWN_MODELS, prepare

    if model in KNOWN_MODELS:
        return str(prepare(model))
    return model


def train_prm(data: str | Path, base_model: str, output: str | Path, settings: TrainSettings | None = None) -> TrainReport:
    s = settings or TrainSettings()
    if s.max_steps < 1 or s.batch_size < 1 or s.grad_accumulation < 1 or s.max_length < 8:
        raise PRMError(f"training settings out of range: {s}")
    if not s.separator:
        raise PRMError("the step separator is empty")
    try:
        import torch
        from transformers import AutoModelForTokenClassification, AutoTokenizer
        from trl.experimental.prm import PRMConfig, PRMTrainer
    except ImportError as e:
        raise PRMError(
            f"training needs trl 1.9 and transformers ({e}); install them with pip install 'apsgen[train]'"
        ) from None
    t0 = time.perf_counter()
    rows = load_rows(data)
    split = rows.train_test_split(test_size=min(s.held_out, max(1, rows.num_rows // 5)), seed=s.seed, shuffle=True)
    train, held = split["train"], split["test"]
    base = resolve_base(base_model)
    torch.manual_seed(s.seed)
    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForTokenClassification.from_pretrained(
        base, num_labels=2, id2label={0: "wrong", 1: "correct"}, label2id={"wrong": 0, "correct": 1}
    )
    out = Path(output).expanduser()
    args = PRMConfig(
        output_dir=str(out / "checkpoints"),
        max_steps=s.max_steps,
        per_device_train_batch_size=s.batch_size,
        per_device_eval_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accumulation,
        learning_rate=s.learning_rate,
        max_length=s.max_length,
        step_separator=s.separator,
        train_on_last_step_only=s.train_on_last_step_only,
        logging_steps=s.logging_steps,
        save_strategy="no",
        report_to=[],
        seed=s.seed,
        data_seed=s.seed,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    trainer = PRMTrainer(model=model, args=args, processing_class=tokenizer, train_dataset=train, eval_dataset=held)
    before = float(trainer.evaluate()["eval_loss"])
    trainer.train()
    after = float(trainer.evaluate()["eval_loss"])
    if not (math.isfinite(before) and math.isfinite(after)):
        raise PRMError(f"training diverged: held-out loss {before} -> {after}; lower --lr")
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
    report = TrainReport(
        output=str(out), base_model=base_model, data=str(data), rows=rows.num_rows, held_out=held.num_rows,
        steps=int(trainer.state.global_step), held_out_loss_before=before, held_out_loss_after=after,
        train_losses=losses, elapsed_s=time.perf_counter() - t0, settings=asdict(s),
    )
    (out / TRAINED_INFO).write_text(json.dumps(asdict(report), indent=2, sort_keys=True) + "\n")
    return report


def trained_separator(folder: str | Path) -> str | None:
    """The step separator an `apsgen train` folder was trained with, if it says."""
    info = Path(folder).expanduser() / TRAINED_INFO
    try:
        return json.loads(info.read_text())["settings"]["separator"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
