"""Turning a search result into rows of the canonical schemas."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from apsgen.problem import Problem
from apsgen.search.result import ProblemResult


@dataclass(frozen=True)
class Provenance:
    """What produced the labels; the same for every row of a run."""

    policy_model: str
    policy_revision: str | None
    prompt_template_hash: str
    sampling: str  # JSON
    search_params: str  # JSON
    verifier: str
    apsgen_version: str
    job_fingerprint: str


def step_rows(problem: Problem, result: ProblemResult, prov: Provenance, created_at: datetime) -> list[dict[str, Any]]:
    base = {
        "dataset": problem.dataset,
        "problem_id": problem.id,
        "question": problem.question,
        "gold_answer": problem.answer,
        "tree_id": f"{problem.id}-{prov.job_fingerprint[:8]}",
        "step_mode": result.step_mode,
        "search_mode": result.mode,
        "policy_model": prov.policy_model,
        "policy_revision": prov.policy_revision,
        "prompt_template_hash": prov.prompt_template_hash,
        "sampling": prov.sampling,
        "search_params": prov.search_params,
        "verifier": prov.verifier,
        "apsgen_version": prov.apsgen_version,
        "job_fingerprint": prov.job_fingerprint,
        "created_at": created_at,
    }
    return [
        {
            **base,
            "node_id": s.node_id,
            "parent_id": s.parent_id,
            "prefix": s.prefix,
            "step_text": s.step_text,
            "step_index": s.step_index,
            "char_start": s.char_start,
            "char_end": s.char_end,
            "mc_value": s.mc_value,
            "n_correct": s.n_correct,
            "n_rollouts": s.n_rollouts,
            "n_truncated": s.n_truncated,
            "n_unparseable": s.n_unparseable,
            "n_timeouts": s.n_timeouts,
            "n_correct_flawed": s.n_correct_flawed,
            "label_source": s.label_source,
            "is_first_error": s.is_first_error,
            "verdict": s.verdict,
            "verdict_basis": s.verdict_basis,
            "reference_value": s.reference_value,
            "label_score": s.label_score,
            "parent_mc": s.parent_mc,
            "label_rule": result.label_rule,
            "solution_source": result.solution_source,
            "judge_first_error": s.judge_first_error,
            "judge_outcome": s.judge_outcome,
            "section": s.section,
            "reflects_on": s.reflects_on,
            "reflection_verdict": s.reflection_verdict,
        }
        for s in result.steps
    ]


def problem_row(problem: Problem, result: ProblemResult, fingerprint: str, created_at: datetime) -> dict[str, Any]:
    return {
        "problem_id": problem.id,
        "dataset": problem.dataset,
        "row": problem.row,
        "question": problem.question,
        "gold_answer": problem.answer,
        "status": result.status,
        "skip_reason": result.skip_reason,
        "search_mode": result.mode,
        "step_mode": result.step_mode,
        "root_mc": result.root_mc,
        "root_mc_source": result.root_mc_source,
        "n_steps": len(result.steps),
        "n_searches": result.n_searches,
        "n_undecided_searches": result.n_undecided_searches,
        "n_first_errors": result.n_first_errors,
        "stop_reason": result.stop_reason,
        "label_rule": result.label_rule,
        "label_inputs": label_inputs(result),
        "error": result.error,
        "solution_source": result.solution_source,
        "solution_outcome": result.solution_outcome,
        "n_judged_paths": result.n_judged_paths,
        "n_consensus_paths": result.n_consensus_paths,
        "n_judge_unparseable": result.n_judge_unparseable,
        "n_policy_calls": result.n_policy_calls,
        "n_rollouts": result.n_rollouts,
        "prompt_tokens": result.prompt_tokens,
        "generated_tokens": result.generated_tokens,
        "outcomes": json.dumps(result.outcomes, sort_keys=True),
        "elapsed_s": result.elapsed_s,
        "job_fingerprint": fingerprint,
        "created_at": created_at,
    }


def rollout_rows(problem: Problem, result: ProblemResult, fingerprint: str, created_at: datetime) -> list[dict[str, Any]]:
    """The problem's kept completions as rows of the rollouts table (none where they were not kept)."""
    return [{"problem_id": problem.id, **asdict(r), "job_fingerprint": fingerprint, "created_at": created_at}
            for r in result.rollouts or ()]


def label_inputs(result: ProblemResult) -> str | None:
    """What the label rule was given for this question beyond each row's evidence (see
    `apsgen.label.replay`): its own-recovery probes and the calibration's digest."""
    if not result.label_rule:
        return None
    rule = json.loads(result.label_rule)
    inputs: dict[str, Any] = {"calibration": (rule.get("calibration") or {}).get("digest")}
    if result.own_recovery is not None:
        inputs["own_recovery"] = result.own_recovery.as_list()
    if result.allgood is not None:
        inputs["allgood"] = result.allgood
    return json.dumps(inputs, sort_keys=True)


def now() -> datetime:
    return datetime.now(timezone.utc)
