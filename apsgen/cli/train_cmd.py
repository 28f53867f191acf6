"""`apsgen train prm EXPORT --model BASE --output DIR`: a PRM trained on a stepwise export with a
plain transformers Trainer (hard or soft labels; apsgen.prm.train)."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a PRM on an export",
        description="Fine-tune BASE with a 2-label token-classification head on the rows of a stepwise export "
        "(`apsgen export OUT --format stepwise`) with a transformers Trainer: hard labels (the stored verdicts) or "
        "soft ones (the label rule's certainty, the export's soft_labels), in the separator layout (TRL 1.x's) or "
        "Qwen2.5-Math-PRM's (<extra_0> after each step). A seeded held-out slice is scored before and after; "
        "checkpoints let a stopped run resume (--resume). The folder written loads in transformers "
        "(AutoModelForTokenClassification) and in `apsgen eval processbench --prm`. Needs pip install 'apsgen[train]'.",
    )
    p.add_argument("kind", choices=["prm"], help="what to train")
    p.add_argument("data", metavar="EXPORT", help="an export folder (its stepwise/ shards) or one stepwise Parquet file")
    p.add_argument("--model", required=True, metavar="BASE",
                   help="the base model: a folder, a Hub id, or a model apsgen prepares (smollm2-135m)")
    p.add_argument("--output", required=True, metavar="DIR", help="where the trained PRM is written")
    p.add_argument("--steps", type=int, default=200, help="optimizer steps (default 200)")
    p.add_argument("--lr", type=float, default=2e-5, help="learning rate (default 2e-5)")
    p.add_argument("--batch-size", type=int, default=4, help="rows per device step (default 4)")
    p.add_argument("--grad-accumulation", type=int, default=1, help="steps accumulated per update (default 1)")
    p.add_argument("--max-length", type=int, default=1024, help="tokens per row; longer rows are cut (default 1024)")
    p.add_argument("--separator", default="\n", help="the step separator (default \\n, TRL's)")
    p.add_argument("--held-out", type=int, default=32, help="rows scored before and after, never trained on (default 32, at most a fifth of the rows)")
    p.add_argument("--last-step-only", action="store_true", help="train on each row's last step only")
    p.add_argument("--labels", choices=["hard", "soft"], default="hard",
                   help="hard: the stored verdicts (cross-entropy); soft: the export's soft_labels, the label rule's "
                   "certainty that a step is right (binary cross-entropy). Default hard")
    p.add_argument("--layout", choices=["separator", "qwen"], default="separator",
                   help="separator: each step followed by --separator (TRL 1.x's layout); qwen: Qwen2.5-Math-PRM's chat "
                   "layout, <extra_0> after each step. Default separator")
    p.add_argument("--save-steps", type=int, default=50, help="a checkpoint every N steps, 0 for none (default 50)")
    p.add_argument("--resume", action="store_true", help="continue from the output's last checkpoint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the report as one JSON line")
    p.set_defaults(func=run)


def run(args) -> int:
    from dataclasses import asdict

    from apsgen.cli.errors import UserError
    from apsgen.prm.score import PRMError
    from apsgen.prm.train import TrainSettings, train_prm

    if args.save_steps < 0:
        raise UserError(f"--save-steps {args.save_steps}: expected 0 (no checkpoints) or more")
    for name in ("steps", "batch_size", "grad_accumulation", "max_length", "held_out"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} {getattr(args, name)}: expected at least 1")
    if not args.lr > 0:
        raise UserError(f"--lr {args.lr}: expected a positive learning rate")
    settings = TrainSettings(
        max_steps=args.steps, learning_rate=args.lr, batch_size=args.batch_size,
        grad_accumulation=args.grad_accumulation, max_length=args.max_length, separator=args.separator,
        held_out=args.held_out, seed=args.seed, train_on_last_step_only=args.last_step_only,
        labels=args.labels, layout=args.layout, save_steps=args.save_steps, resume=args.resume,
    )
    try:
        report = train_prm(args.data, args.model, args.output, settings)
    except PRMError as e:
        raise UserError(str(e)) from None
    print(json.dumps(asdict(report), sort_keys=True) if args.json else report.render())
    return 0
