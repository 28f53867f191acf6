"""Re-grading an output's kept rollouts with the current verifier (`apsgen regrade OUT`).

A job that kept its rollouts (`runner.keep_rollouts`) holds every completion the search drew, with
the outcome the verifier gave it then. A newer verifier (or other `verify:` settings) may grade
some differently. This reads each problem's rollouts, grades `prefix + text` against the problem's
gold answer again, and reports what would change: outcomes, the evidence of each stored state, and
the verdicts the label rule gives that evidence (replayed with `apsgen.label.replay`, against each
row's stored reference). It does not rewrite the output, and it cannot redo the search: where a
screening solution (a completion of the empty prefix) changes its outcome, the question would have
been searched from other solutions, which the report counts apart.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from apsgen.config import VerifySpec
from apsgen.io.store import OutputStore
from apsgen.label.calibration import FILE, Calibration
from apsgen.label.replay import ProblemReplay, ReplayError
from apsgen.label.text import continuation_error
from apsgen.reasoning import answer_part

# The evidence columns of a step row, by verifier outcome (as MCStats.from_outcomes counts them).
_COUNT_COLUMN = {"correct": "n_correct", "truncated": "n_truncated", "no_answer": "n_unparseable",
                 "timeout": "n_timeouts"}


class RegradeError(ValueError):
    """An output whose rollouts cannot be re-graded (none kept, or rows from another job)."""


@dataclass
class RegradeReport:
    output: str
    verifier: str  # the verifier that graded them now (describe())
    rollouts: int = 0
    problems: int = 0
    changed: Counter[tuple[str, str]] = field(default_factory=Counter)  # (was, now) -> rollouts
    answers_changed: int = 0  # the answer read from the text differs (outcome or not)
    screening_changed: int = 0  # of the changed, completions of the empty prefix
    problems_changed: int = 0
    states_changed: int = 0  # stored states whose evidence changes
    verdicts_changed: list[dict[str, Any]] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_changed(self) -> int:
        return sum(self.changed.values())

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "verifier": self.verifier, "rollouts": self.rollouts, "problems": self.problems,
                "changed": {f"{a} -> {b}": n for (a, b), n in sorted(self.changed.items())},
                "n_changed": self.n_changed, "answers_changed": self.answers_changed,
                "screening_changed": self.screening_changed, "problems_changed": self.problems_changed,
                "states_changed": self.states_changed, "verdicts_changed": self.verdicts_changed,
                "examples": self.examples}

    def render(self, show: int = 5) -> str:
        lines = [f"re-graded {self.rollouts} kept rollouts of {self.problems} problems in {self.output}",
                 f"  verifier      {self.verifier}"]
        if not self.n_changed:
            lines.append(f"  outcomes      every one the same ({self.answers_changed} answers read differently)")
            return "\n".join(lines)
        lines += [
            f"  outcomes      {self.n_changed} change on {self.problems_changed} problems: "
            + ", ".join(f"{a} -> {b} {n}" for (a, b), n in self.changed.most_common()),
            f"  answers       {self.answers_changed} read differently",
            f"  screening     {self.screening_changed} of the changed are screening solutions: those questions would "
            "have been searched from other solutions (run the job again to see how)",
            f"  evidence      {self.states_changed} stored states' rollout counts change",
            f"  verdicts      {len(self.verdicts_changed)} stored verdicts would change on their new evidence",
        ]
        for v in self.verdicts_changed[:show]:
            lines.append(f"    {v['problem_id']} node {v['node_id']}: {v['was']} -> {v['now']} "
                         f"({v['n_correct_was']} -> {v['n_correct_now']} of {v['n_rollouts']} right)")
        for e in self.examples[:show]:
            lines.append(f"    rollout {e['problem_id']}/{e['rollout_id']}: {e['was']} -> {e['now']} "
                         f"(answer {e['answer_was']!r} -> {e['answer_now']!r}; gold {e['gold']!r})")
        return "\n".join(lines)


def _check_rows(table: Any, path: str, fingerprint: str, problems: dict[str, dict[str, Any]]) -> None:
    """Refuse a rollouts shard written by another job, or naming a problem this output lacks."""
    prints = pc.unique(table.column("job_fingerprint")).to_pylist()
    foreign = [p for p in prints if p != fingerprint]
    if foreign:
        raise RegradeError(f"{path}: field job_fingerprint holds {foreign[0]!r}, but this output's manifest says "
                           f"{fingerprint!r}: the rollouts come from another job's output")
    ids = pc.unique(table.column("problem_id")).to_pylist()
    missing = [i for i in ids if i not in problems]
    if missing:
        raise RegradeError(f"{path}: field problem_id holds {missing[0]!r}, which is no problem of this output")


def regrade(output: str, verify: VerifySpec | None = None, *, examples: int = 20) -> RegradeReport:
    """Re-grade every kept rollout of `output` with the current verifier under `verify` (default:
    the job's own `verify:` settings); what would change (nothing is written)."""
    from apsgen.verify import Verifier

    store = OutputStore(output)
    manifest = store.read_manifest()
    if manifest is None:
        raise RegradeError(f"no apsgen output at {output} (manifest.json missing)")
    shards = store.rollout_shards()
    if not shards:
        raise RegradeError(f"{output} keeps no rollouts: only a job run with `runner: {{keep_rollouts: true}}` "
                           "stores them (docs/datasets.md)")
    settings = verify or VerifySpec.model_validate(manifest.spec.get("verify") or {})
    checks = bool((manifest.spec.get("steps") or {}).get("checks", True))
    reasoning = manifest.spec.get("reasoning") or {}
    thinking_end = reasoning.get("thinking_end", "</think>") if reasoning.get("enabled") else None
    problems = {r["problem_id"]: r for r in store.read_problems().to_pylist()}
    steps: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in store.read_steps().to_pylist():
        steps[row["problem_id"]].append(row)
    raw = store.read_bytes(FILE)
    calibration = Calibration.from_json(raw.decode()) if raw else None
    verifier = Verifier.from_settings(settings)
    report = RegradeReport(output=output, verifier=verifier.describe())
    try:
        by_problem: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for path in shards:
            table = pq.read_table(path, filesystem=store.fs)
            _check_rows(table, path, manifest.fingerprint, problems)
            for row in table.to_pylist():
                by_problem[row["problem_id"]].append(row)
        for pid, rows in by_problem.items():
            _regrade_problem(report, problems[pid], rows, steps.get(pid, []), calibration, verifier, checks, examples,
                             thinking_end)
    finally:
        verifier.close()
    return report


def _regrade_problem(report: RegradeReport, problem: dict[str, Any], rows: list[dict[str, Any]],
                     step_rows: list[dict[str, Any]], calibration: Calibration | None, verifier: Any, checks: bool,
                     examples: int, thinking_end: str | None = None) -> None:
    """One problem's rollouts graded again (a reasoning policy's on the part after its thinking, as
    the search graded them); what changes goes into `report`."""
    gold = problem["gold_answer"]
    now = verifier.check_batch([answer_part(r["prefix"] + r["text"], thinking_end) for r in rows], gold,
                               [r["finish_reason"] == "length" for r in rows])
    report.rollouts += len(rows)
    report.problems += 1
    delta: dict[int, Counter[str]] = defaultdict(Counter)  # node -> change per count column
    changed_here = 0
    for row, check in zip(rows, now, strict=True):
        outcome = str(getattr(check.outcome, "value", check.outcome))
        if check.answer != row["answer"]:
            report.answers_changed += 1
        flawed = outcome == "correct" and checks and continuation_error(row["text"]) is not None
        if outcome == row["outcome"] and flawed == row["flawed"]:
            continue
        node = int(row["node_id"])
        for column, sign in ((_COUNT_COLUMN.get(row["outcome"]), -1), (_COUNT_COLUMN.get(outcome), 1)):
            if column is not None:
                delta[node][column] += sign
        delta[node]["n_correct_flawed"] += int(flawed) - int(bool(row["flawed"]))
        if outcome == row["outcome"]:
            continue
        changed_here += 1
        report.changed[(row["outcome"], outcome)] += 1
        report.screening_changed += node == 0
        if len(report.examples) < examples:
            report.examples.append({"problem_id": problem["problem_id"], "rollout_id": row["rollout_id"],
                                    "node_id": node, "was": row["outcome"], "now": outcome,
                                    "answer_was": row["answer"], "answer_now": check.answer, "gold": gold})
    report.problems_changed += changed_here > 0
    touched = {node: d for node, d in delta.items() if any(d.values())}
    if not touched or not step_rows:
        return
    new_rows = []
    for row in step_rows:
        d = touched.get(int(row["node_id"]))
        if d is None or row.get("label_source") == "unestimated":
            new_rows.append(row)
            continue
        report.states_changed += 1
        new_rows.append({**row, **{k: int(row.get(k) or 0) + v for k, v in d.items()}})
    try:
        replay = ProblemReplay(problem, new_rows, calibration)
    except ReplayError as e:
        raise RegradeError(f"problem {problem['problem_id']}: {e}") from None
    old = {int(r["node_id"]): r for r in step_rows}
    for node in sorted(touched):
        if node not in old or old[node].get("label_source") == "unestimated" or old[node].get("verdict") is None:
            continue
        decision = replay.replay(node).replayed
        if decision.verdict != old[node]["verdict"]:
            report.verdicts_changed.append({
                "problem_id": problem["problem_id"], "node_id": node, "was": old[node]["verdict"],
                "now": decision.verdict, "n_rollouts": old[node]["n_rollouts"],
                "n_correct_was": old[node]["n_correct"], "n_correct_now": replay.steps[node]["n_correct"],
            })


def report_json(report: RegradeReport) -> str:
    return json.dumps(report.to_dict(), sort_keys=True)
