"""Shared helpers for tests that need an output folder: a small known tree written as a shard pair."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from apsgen.io.store import Manifest, OutputStore

Q = "What is 4 + 5?"
WHEN = datetime(2026, 1, 2, tzinfo=timezone.utc)


def legacy_verdict(mc):
    """The verdict that labels like the former MC > 0.5 default, so the pinned rows below hold for both."""
    return "undecided" if mc is None else "correct" if mc > 0.5 else "wrong"


def step(node, parent, prefix, text, mc, *, first_error=False, source="rollouts", pid="p1", question=Q, verdict=None):
    return {
        "dataset": "toy",
        "problem_id": pid,
        "question": question,
        "gold_answer": "9",
        "tree_id": f"{pid}-fp",
        "node_id": node,
        "parent_id": parent,
        "prefix": prefix,
        "step_text": text,
        "step_index": prefix.count("\n\n"),
        "char_start": len(prefix),
        "char_end": len(prefix) + len(text),
        "step_mode": "delimiter",
        "mc_value": mc,
        "n_correct": 0 if mc is None else round(mc * 8),
        "n_rollouts": 8,
        "n_truncated": 0,
        "n_unparseable": 8 if mc is None else 0,
        "n_timeouts": 0,
        "label_source": source,
        "is_first_error": first_error,
        "verdict": verdict or legacy_verdict(mc),
        "reference_value": None,
        "parent_mc": None,
        "label_rule": "{}",
        "search_mode": "omegaprm",
        "policy_model": "toy-model",
        "policy_revision": None,
        "prompt_template_hash": "h",
        "sampling": "{}",
        "search_params": "{}",
        "verifier": "apsgen.verify 1",
        "apsgen_version": "0.1.0",
        "job_fingerprint": "fp",
        "created_at": WHEN,
    }


def problem(pid, status="searched", reason=None, n_steps=0):
    return {
        "problem_id": pid, "dataset": "toy", "row": 0, "question": Q, "gold_answer": "9", "status": status,
        "skip_reason": reason, "search_mode": "omegaprm", "step_mode": "delimiter", "root_mc": 0.5,
        "root_mc_source": "screening", "n_steps": n_steps, "n_searches": 3, "n_undecided_searches": 0,
        "n_first_errors": 1, "stop_reason": "empty_pool", "label_rule": "{}", "error": None, "n_policy_calls": 5,
        "n_rollouts": 40, "prompt_tokens": 100, "generated_tokens": 400,
        "outcomes": json.dumps({"correct": 20, "wrong": 12, "no_answer": 8}), "elapsed_s": 0.1,
        "job_fingerprint": "fp", "created_at": WHEN,
    }


# The tree (node: text, MC):  root ─ 1 "A" 1.0 ─ (2 "B", not annotated) ─ 3 "C" 0.75 ─ 4 "D" 0.0 first error ─ 5 "X" 0.0
#                                  │                                             └ 6 "E" no MC ─ 7 "F \boxed{9}" 0.625
#                                  └ 8 "G" 0.5
KNOWN_TREE = [
    step(1, None, "", "A\n\n", 1.0),
    step(3, 2, "A\n\nB\n\n", "C\n\n", 0.75),
    step(4, 3, "A\n\nB\n\nC\n\n", "D\n\n", 0.0, first_error=True),
    step(5, 4, "A\n\nB\n\nC\n\nD\n\n", "X", 0.0, source="wrong_solution"),
    step(6, 3, "A\n\nB\n\nC\n\n", "E\n\n", None),
    step(7, 6, "A\n\nB\n\nC\n\nE\n\n", "F \\boxed{9}", 0.625, source="correct_solution"),
    step(8, 1, "A\n\n", "G", 0.5),
]


def make_output(path, steps=KNOWN_TREE, problems=None) -> str:
    store = OutputStore(str(path))
    store.write_manifest(Manifest(job="toy", fingerprint="fp", spec={"name": "toy"}, apsgen_version="0.1.0",
                                  created_at=WHEN.isoformat()))
    problems = problems or [problem("p1", n_steps=len(steps)), problem("p2", "skipped", "all_correct")]
    store.write_part(0, steps, problems)
    return str(path)
