"""The export formats: how one tree's step rows become training rows, with hard labels applied here.

A step's label is the label rule's stored verdict (`correct` is `+`, `wrong` is `-`) unless a
threshold is given, in which case it is `mc_value > threshold` (0.5 is the published MATH-APS
convention, 0 Math-Shepherd's "hard estimation"). Along a solution path no `+` follows a `-`: a
path ends at its first `-`, and a state the rule left `undecided` ends the path before it (it has
no label to train on). Outputs written before verdicts were stored fall back to MC > 0.5.

| format        | one row per        | columns |
|---------------|--------------------|---------|
| math-aps      | labelled state     | question, process, label (`+`/`-`) |
| math-shepherd | solution path      | input (` ки` after each step), label (`+`/`-` in its place), task |
| stepwise      | solution path      | prompt, completions, labels (bool), soft_labels, mc_values: stepwise supervision (`trl` is an alias) |
| qwen-prm      | solution path      | query, response (each step followed by `<extra_0>`), labels, mc_values |

Solution paths include the correct sampled solutions as all-good paths unless `correct_paths` is off.
With `consensus` only paths the LLM judge agreed with are written (math-aps: only states on them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from apsgen.paths import Segment, SolutionPath, full_text, labelled_paths, soft_label, step_is_good

DEFAULT_THRESHOLD: float | None = None  # None: label by the stored verdict
SHEPHERD_TAG = "ки"  # Math-Shepherd's step tag; trainers find the label at its position
QWEN_STEP_TOKEN = "<extra_0>"  # Qwen2.5-Math-PRM reads the reward at each of these tokens

ALIASES = {"trl": "stepwise"}  # the name before TRL's PRMTrainer moved on; kept for old scripts


@dataclass(frozen=True)
class ExportFormat:
    name: str
    schema: pa.Schema
    # (one tree's rows, threshold, correct paths, consensus only, convention=first_error|corrected)
    rows: Callable[..., list[dict[str, Any]]]
    doc: str


def _sign(good: bool) -> str:
    return "+" if good else "-"


def _steps(segments: list[tuple[Segment, bool]]) -> list[str]:
    # The trainer puts its own separator between steps, so a step's trailing blank line goes.
    return [s.text.strip() for s, _ in segments]


def _labelled_paths(
    rows: list[dict[str, Any]], threshold: float | None, correct_paths: bool, consensus: bool = False,
    convention: str = "first_error",
) -> list[tuple[SolutionPath, list[tuple[Segment, bool]]]]:
    """The labelled paths of one tree; with `consensus`, only those whose judge agreed (its verdict
    is stored on the path's last labelled state, see apsgen.judge.consensus); `convention`: what
    follows a first error (apsgen.paths)."""
    outcome = {r["node_id"]: r.get("judge_outcome") for r in rows} if consensus else {}
    return [(path, segments) for path, segments
            in labelled_paths(rows, threshold, correct_paths=correct_paths, convention=convention)
            if not consensus or outcome.get(segments[-1][0].node_id) == "agree"]


def math_aps_rows(rows: list[dict[str, Any]], threshold: float | None, correct_paths: bool, consensus: bool = False,
                  convention: str = "first_error") -> list[dict[str, Any]]:
    keep = (
        {seg.node_id for _, segments in _labelled_paths(rows, threshold, True, True) for seg, _ in segments}
        if consensus else None
    )
    out = []
    for r in rows:
        if keep is not None and r["node_id"] not in keep:
            continue
        good = step_is_good(r["mc_value"], r.get("verdict"), threshold)
        if good is not None:
            out.append({"question": r["question"], "process": full_text(r).rstrip(), "label": _sign(good)})
    return out


def math_shepherd_rows(rows: list[dict[str, Any]], threshold: float | None, correct_paths: bool, consensus: bool = False,
                       convention: str = "first_error") -> list[dict[str, Any]]:
    out = []
    for path, segments in _labelled_paths(rows, threshold, correct_paths, consensus, convention):
        steps = _steps(segments)
        signs = [_sign(good) for _, good in segments]
        out.append(
            {
                "input": f"{path.question} " + "\n".join(f"{s} {SHEPHERD_TAG}" for s in steps),
                "label": f"{path.question} " + "\n".join(f"{s} {g}" for s, g in zip(steps, signs)),
                "task": path.dataset,
            }
        )
    return out


def _marks(path: SolutionPath, segments: list[tuple[Segment, bool]]) -> dict[str, Any]:
    """Where the path's located first error and its reflection are among its steps (indexes into the
    row's steps, null where the path has none), and the reflection's verdict (`reflection_verdict`,
    recorded in either convention; see apsgen.paths)."""
    nodes = [seg.node_id for seg, _ in segments]
    error = next((i for i, (seg, _) in enumerate(segments) if seg.is_first_error), None)
    return {"first_error": error,
            "reflection": nodes.index(path.reflection) if path.reflection in nodes else None,
            "reflection_verdict": path.reflection_verdict}


def stepwise_rows(rows: list[dict[str, Any]], threshold: float | None, correct_paths: bool, consensus: bool = False,
                  convention: str = "first_error") -> list[dict[str, Any]]:
    return [
        {
            "prompt": path.question,
            "completions": _steps(segments),
            "labels": [good for _, good in segments],
            "soft_labels": [soft_label(s, good) for s, good in segments],
            "mc_values": [s.mc_value for s, _ in segments],
            **_marks(path, segments),
        }
        for path, segments in _labelled_paths(rows, threshold, correct_paths, consensus, convention)
    ]


def qwen_prm_rows(rows: list[dict[str, Any]], threshold: float | None, correct_paths: bool, consensus: bool = False,
                  convention: str = "first_error") -> list[dict[str, Any]]:
    return [
        {
            "query": path.question,
            "response": "".join(f"{s}{QWEN_STEP_TOKEN}" for s in _steps(segments)),
            "labels": [good for _, good in segments],
            "mc_values": [s.mc_value for s, _ in segments],
            **_marks(path, segments),
        }
        for path, segments in _labelled_paths(rows, threshold, correct_paths, consensus, convention)
    ]


_S = pa.string()
# Where a path's first error and the reflection on it are (indexes into its steps), and that reflection's verdict.
_MARKS = [("first_error", pa.int32()), ("reflection", pa.int32()), ("reflection_verdict", pa.string())]
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
            "Math-Shepherd: one row per solution path, ' ки' after each step, + or - in its place in label "
            "(the input OpenRLHF-style PRM trainers read: input key `input`, label key `label`, placeholder ' ки').",
        ),
        ExportFormat(
            "stepwise",
            pa.schema(
                [
                    ("prompt", _S),
                    ("completions", pa.list_(_S)),
                    ("labels", pa.list_(pa.bool_())),
                    ("soft_labels", pa.list_(pa.float64())),
                    ("mc_values", pa.list_(pa.float64())),
                    *_MARKS,
                ]
            ),
            stepwise_rows,
            "Stepwise supervision (prompt, completions, labels): one row per solution path, as axolotl's "
            "`stepwise_supervised` datasets and TRL 1.x's `trl.experimental.prm` read it (and `apsgen train prm`); "
            "soft_labels gives each step the label rule's certainty that it is right (apsgen.paths.soft_label), "
            "mc_values its MC value (null on a correct path's unestimated steps); first_error and reflection index "
            "the located first error and the reflection that retracts it (--convention corrected) among completions, "
            "reflection_verdict is that reflection's verdict (correct: back on track; in either convention).",
        ),
        ExportFormat(
            "qwen-prm",
            pa.schema(
                [
                    ("query", _S),
                    ("response", _S),
                    ("labels", pa.list_(pa.bool_())),
                    ("mc_values", pa.list_(pa.float64())),
                    *_MARKS,
                ]
            ),
            qwen_prm_rows,
            "Qwen PRM: one row per solution path, each step followed by <extra_0>; first_error, reflection and "
            "reflection_verdict as in stepwise.",
        ),
    )
}


def get_format(name: str) -> ExportFormat:
    name = ALIASES.get(name, name)
    if name not in FORMATS:
        raise ValueError(f"unknown export format {name!r}; choose one of: {', '.join(FORMATS)}")
    return FORMATS[name]


def check_threshold(threshold: float | None) -> float | None:
    if threshold is not None and not 0.0 <= threshold < 1.0:
        raise ValueError(
            f"threshold {threshold} is outside [0, 1): a step is labelled good when its MC value > threshold, "
            f"so use e.g. 0.5 (MATH-APS) or 0 (any correct rollout), or leave it out to use the stored verdicts"
        )
    return threshold


def label_description(threshold: float | None) -> str:
    return "the label rule's stored verdict" if threshold is None else f"MC > {threshold}"
