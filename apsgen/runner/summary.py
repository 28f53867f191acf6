"""What a run did: the driver's RunSummary, added to as results come in."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from apsgen.search.result import ProblemResult


@dataclass
class RunSummary:
    job: str
    output: str
    fingerprint: str
    total_problems: int = 0
    already_done: int = 0
    searched: int = 0
    skipped: Counter = field(default_factory=Counter)
    failed: dict[str, str] = field(default_factory=dict)
    bad_rows: int = 0
    duplicates: int = 0
    excluded: int = 0
    rollouts: int = 0
    policy_calls: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    steps: int = 0
    positive: int = 0  # verdict correct
    negative: int = 0  # verdict wrong
    undecided: int = 0
    first_errors: int = 0
    worker_restarts: int = 0
    calibration: str | None = None  # the recovery distribution the labels were judged against (sequential rule)
    wall_s: float = 0.0
    problems_by_node: Counter = field(default_factory=Counter)  # Ray node id -> problems it finished

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["skipped"] = dict(self.skipped)
        d["problems_by_node"] = dict(self.problems_by_node)
        return d

    def render(self) -> str:
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        rate = self.generated_tokens / self.wall_s if self.wall_s else 0.0
        lines = [
            f"job {self.job}: {self.output}  (fingerprint {self.fingerprint})",
            f"  problems      {self.total_problems} loaded, {self.already_done} already done, "
            f"{self.searched} searched, {skipped} skipped ({reasons}), {len(self.failed)} failed",
            f"  input         {self.bad_rows} bad rows, {self.duplicates} duplicates, {self.excluded} excluded",
            f"  rollouts      {self.rollouts} in {self.policy_calls} policy calls",
            f"  tokens        {self.generated_tokens} generated ({rate:.0f}/s), {self.prompt_tokens} prompt",
            f"  labels        {self.steps} steps: {self.positive} correct, {self.negative} wrong, "
            f"{self.undecided} undecided; {self.first_errors} first errors located",
            *([f"  calibration   {self.calibration}"] if self.calibration is not None else []),
            f"  wall time     {self.wall_s:.1f}s" + (f", {self.worker_restarts} worker restarts" if self.worker_restarts else ""),
        ]
        if len(self.problems_by_node) > 1:
            lines.append("  nodes         " + ", ".join(
                f"{node[:8]} {n}" for node, n in sorted(self.problems_by_node.items())) + " problems")
        for pid, err in list(self.failed.items())[:5]:
            lines.append(f"  failed {pid}: {err.splitlines()[-1][:160]}")
        return "\n".join(lines)


def account(summary: RunSummary, result: ProblemResult) -> None:
    """Add one problem's result to the run's counts."""
    if result.status == "skipped":
        summary.skipped[result.skip_reason or "unknown"] += 1
    elif result.status == "searched":
        summary.searched += 1
    summary.rollouts += result.n_rollouts
    summary.policy_calls += result.n_policy_calls
    summary.prompt_tokens += result.prompt_tokens
    summary.generated_tokens += result.generated_tokens
    summary.steps += result.n_estimated
    summary.positive += result.n_positive
    summary.negative += result.n_negative
    summary.undecided += result.n_undecided
    summary.first_errors += result.n_first_errors
