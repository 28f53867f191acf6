"""The export formats: how one tree's step rows become training rows, with hard labels applied here.

Labels are stored as MC values; a format turns a state into `+`/`-` (or True/False) with
`mc_value > threshold`. The default threshold 0.5 is the one the published MATH-APS uses; pass 0
for Math-Shepherd's "hard estimation" (any correct rollout makes a step good).

| format        | one row per        | columns |
|---------------|--------------------|---------|
| math-aps      | labelled state     | question, process, label (`+`/`-`) |
| math-shepherd | solution path      | input (` ки` after each step), label (`+`/`-` in its place), task |
| trl           | solution path      | prompt, completions, labels (bool), mc_values: TRL's stepwise supervision |
| qwen-prm      | solution path      | query, response (each step followed by `<extra_0>`), labels, mc_values |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from apsgen.io.export.paths import SolutionPath, full_text, solution_paths

DEFAULT_THRESHOLD = 0.5
SHEPHERD_TAG = "ки"  # Math-Shepherd's step tag; trainers find the label at its position
QWEN_STEP_TOKEN = "<extra_0>"  # Qwen2.5-Math-PRM reads the reward at each of these tokens


@dataclass(frozen=True)
class ExportFormat:
    name: str
    schema: pa.Schema
    rows: Callable[[list[dict[str, Any]], float], list[dict[str, Any]]]  # (one tree's rows, threshold)
    doc: str


def _sign(mc: float, threshold: float) -> str:
    return "+" if mc > threshold else "-"


def _steps(path: SolutionPath) -> list[str]:
    # The trainer puts its own separator between steps, so a step's trailing blank line goes.
    return [s.text.strip() for s in path.segments]


def math_aps_rows(rows: list[dict[str, Any]], threshold: float) -> list[dict[str, Any]]:
    return [
        {"question": r["question"], "process": full_text(r).rstrip(), "label": _sign(r["mc_value"], threshold)}
        for r in rows
        if r["mc_value"] is not None
    ]


def math_shepherd_rows(rows: list[dict[str, Any]], threshold: float) -> list[dict[str, Any]]:
    out = []
    for path in solution_paths(rows):
        steps = _steps(path)
        signs = [_sign(s.mc_value, threshold) for s in path.segments]
        out.append(
            {
                "input": f"{path.question} " + "\n".join(f"{s} {SHEPHERD_TAG}" for s in steps),
                "label": f"{path.question} " + "\n".join(f"{s} {g}" for s, g in zip(steps, signs)),
                "task": path.dataset,
            }
        )
    return out


def trl_rows(rows: list[dict[str, Any]], threshold: float) -> list[dict[str, Any]]:
    return [
        {
            "prompt": path.question,
            "completions": _steps(path),
            "labels": [s.mc_value > threshold for s in path.segments],
            "mc_values": [s.mc_value for s in path.segments],
        }
        for path in solution_paths(rows)
    ]


def qwen_prm_rows(rows: list[dict[str, Any]], threshold: float) -> list[dict[str, Any]]:
    return [
        {
            "query": path.question,
            "response": "".join(f"{s}{QWEN_STEP_TOKEN}" for s in _steps(path)),
            "labels": [s.mc_value > threshold for s in path.segments],
            "mc_values": [s.mc_value for s in path.segments],
        }
        for path in solution_paths(rows)
    ]


_S = pa.string()
FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(
            "math-aps",
            pa.schema([("question", _S), ("process", _S), ("label", _S)]),
            math_aps_rows,
            "MATH-APS: one row per labelled solution prefix, label + or -.",
        ),
        ExportFormat(
            "math-shepherd",
            pa.schema([("input", _S), ("label", _S), ("task", _S)]),
            math_shepherd_rows,
            "Math-Shepherd: one row per solution path, ' ки' after each step, + or - in its place in label.",
        ),
        ExportFormat(
            "trl",
            pa.schema(
                [
                    ("prompt", _S),
                    ("completions", pa.list_(_S)),
                    ("labels", pa.list_(pa.bool_())),
                    ("mc_values", pa.list_(pa.float64())),
                ]
            ),
            trl_rows,
            "TRL stepwise supervision (PRMTrainer): one row per solution path.",
        ),
        ExportFormat(
            "qwen-prm",
            pa.schema(
                [
                    ("query", _S),
                    ("response", _S),
                    ("labels", pa.list_(pa.bool_())),
                    ("mc_values", pa.list_(pa.float64())),
                ]
            ),
            qwen_prm_rows,
            "Qwen PRM: one row per solution path, each step followed by <extra_0>.",
        ),
    )
}


def get_format(name: str) -> ExportFormat:
    if name not in FORMATS:
        raise ValueError(f"unknown export format {name!r}; choose one of: {', '.join(FORMATS)}")
    return FORMATS[name]


def check_threshold(threshold: float) -> float:
    if not 0.0 <= threshold < 1.0:
        raise ValueError(
            f"threshold {threshold} is outside [0, 1): a step is labelled good when its MC value > threshold, "
            f"so use e.g. 0.5 (MATH-APS) or 0 (any correct rollout)"
        )
    return threshold
