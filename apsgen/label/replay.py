"""Recompute and explain a stored label from the output alone (`apsgen explain`).

A step row keeps the evidence (its rollout counts), the reference and the rule's score; the
problem row keeps what the rule was given for the whole question (`label_inputs`: its own-recovery
probes, the calibration's digest) and the rule with every parameter (`label_rule`); the output
keeps `calibration.json`. From those, every verdict is recomputed by the same functions that made
it: the text checks along the state's path, the restatement check, or the pure `decide`. A
recomputed verdict that differs from the stored one is a mismatch: an output written by other code,
or edited.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from apsgen.config import CalibrationSpec, Labelling
from apsgen.label.calibration import Calibration
from apsgen.label.decision import Decision
from apsgen.label.evidence import MCStats
from apsgen.label.probes import OwnRecovery
from apsgen.label.rule import PaperRule, RuleParams, ThresholdRule, allgood_risk, decide, hypotheses, wrong_mean
from apsgen.label.text import restates_question, text_error

TEXT_BASES = ("arithmetic", "retraction")


class ReplayError(ValueError):
    """An output that does not hold what a replay needs (a missing calibration, a foreign row)."""


@dataclass
class Replayed:
    """One stored label and its recomputation, with the chain of reasons that gives it."""

    node_id: int
    stored: Decision
    replayed: Decision
    chain: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        if (self.stored.verdict, self.stored.basis) != (self.replayed.verdict, self.replayed.basis):
            return False
        a, b = self.stored.score, self.replayed.score
        if a is None or b is None:
            return a is None or b is None  # rows written before scores were stored have none
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _calibration_for(summary: dict[str, Any] | None, search: dict[str, Any],
                     stored: Calibration | None) -> Calibration:
    """The exact calibration a row's summary names: the output's calibration.json when its digest
    matches, else the job's prior rebuilt from its settings (checked against the digest)."""
    if not summary:
        raise ReplayError("the label rule records no calibration")
    digest = summary.get("digest")
    if stored is not None and stored.digest() == digest:
        return stored
    cal = search.get("calibration") or {}
    defaults = CalibrationSpec()
    prior = Calibration(float(cal.get("prior", search.get("recovery_prior", defaults.prior))),
                        float(cal.get("prior_weight", search.get("recovery_prior_weight", defaults.prior_weight))),
                        "prior")
    if prior.digest() == digest:
        return prior
    raise ReplayError(f"no calibration with digest {digest} in this output (calibration.json holds "
                      f"{stored.digest() if stored else 'nothing'}; the job's prior is {prior.digest()})")


def evidence_of(row: dict[str, Any], invalid: str) -> MCStats | None:
    """The MC evidence a row stores (None for a state nobody estimated)."""
    if row.get("label_source") == "unestimated":
        return None
    n, c = int(row["n_rollouts"]), int(row["n_correct"])
    truncated, unparseable, timeouts = (int(row.get(k) or 0) for k in ("n_truncated", "n_unparseable", "n_timeouts"))
    return MCStats(n_rollouts=n, n_correct=c, n_wrong=n - c - truncated - unparseable - timeouts,
                   n_truncated=truncated, n_unparseable=unparseable, n_timeouts=timeouts,
                   n_correct_flawed=int(row.get("n_correct_flawed") or 0), invalid=invalid,  # type: ignore[arg-type]
                   source=row["label_source"])


class ProblemReplay:
    """One problem's stored labels, recomputed (`replay`) and explained (`explain`)."""

    def __init__(self, problem: dict[str, Any], steps: list[dict[str, Any]], calibration: Calibration | None) -> None:
        self.problem = problem
        self.steps = {int(s["node_id"]): s for s in steps}
        rule_json = problem.get("label_rule") or (steps[0].get("label_rule") if steps else "") or "{}"
        self.rule: dict[str, Any] = json.loads(rule_json)
        # The job's label settings: nested (search, steps, label, calibration), or an older output's flat search.
        search = json.loads(steps[0]["search_params"]) if steps and steps[0].get("search_params") else {}
        nested = search.get("search") if isinstance(search.get("search"), dict) else None
        self.invalid = (nested or search).get("invalid_rollouts", "wrong")
        self.step_checks = bool((search.get("steps") or {}).get("checks", search.get("step_checks", True)))
        inputs = json.loads(problem["label_inputs"]) if problem.get("label_inputs") else {}
        self.own = OwnRecovery.from_list(inputs["own_recovery"]) if "own_recovery" in inputs else None
        self.allgood: dict[str, Any] | None = inputs.get("allgood")
        self.name = self.rule.get("rule", "")
        self.calibration: Calibration | None = None
        self.params: RuleParams | None = None
        if self.name == "sequential":
            known = {f.name for f in fields(RuleParams)}
            self.params = RuleParams(**{k: v for k, v in self.rule.items() if k in known})
            self.calibration = _calibration_for(self.rule.get("calibration"), search, calibration)
        elif self.name == "threshold":
            self.threshold = ThresholdRule(Labelling.of(label_rule="threshold", mc_threshold=self.rule.get("mc_threshold", 0.0),
                                                        pool_min_mc=self.rule.get("pool_min_mc", 0.0)))
        elif self.name == "paper":
            self.threshold = PaperRule(Labelling.of(label_rule="paper"))
        elif steps:
            raise ReplayError(f"unknown label rule {self.name!r} in problem {problem.get('problem_id')}")

    # -- the path a state lies on ----------------------------------------------------------------

    def path(self, node_id: int) -> list[dict[str, Any]]:
        """The rows from the first step to `node_id`, following parent ids."""
        out, seen = [], set()
        node: int | None = node_id
        while node is not None and node not in seen:
            seen.add(node)
            row = self.steps.get(node)
            if row is None:
                break
            out.append(row)
            node = row.get("parent_id")
        return out[::-1]

    def _text_error_on_path(self, node_id: int) -> tuple[dict[str, Any], str] | None:
        for row in self.path(node_id):
            found = text_error(row["step_text"])
            if found is not None:
                return row, found
        return None

    # -- recompute -------------------------------------------------------------------------------

    def replay(self, node_id: int) -> Replayed:
        row = self.steps[node_id]
        stored = Decision(row["verdict"], reference=row.get("reference_value"), score=row.get("label_score"),
                          basis=row.get("verdict_basis") or "rollouts")
        chain: list[str] = []
        basis = stored.basis
        if basis in TEXT_BASES:
            found = self._text_error_on_path(node_id) if self.step_checks else None
            if found is None:
                chain.append("no step on its path shows an error by its text")
                replayed = Decision("undecided", basis="none")
            else:
                at, kind = found
                where = "this step" if int(at["node_id"]) == node_id else f"step {at['step_index']} (node {at['node_id']}) before it"
                what = "states a false equation" if kind == "arithmetic" else "retracts an earlier step"
                chain.append(f"text: {where} {what}: wrong without rollouts")
                replayed = Decision("wrong", basis=kind)
        elif basis == "restatement":
            restates = self.step_checks and restates_question(self.problem.get("question", row.get("question", "")),
                                                              row["step_text"])
            chain.append("text: the step only restates the question, so it has its parent's verdict (correct)"
                         if restates else "text: the step is not a restatement of the question")
            replayed = Decision("correct", basis="restatement") if restates else Decision("undecided", basis="none")
        else:
            replayed = self._by_rollouts(row, chain)
        return Replayed(node_id, stored, replayed, chain)

    def replay_reflection(self, node_id: int) -> Replayed | None:
        """A reflection's verdict on its own rollouts (`reflection_verdict`), recomputed from its
        evidence and the reference it was judged against (the row's `reference_value`); None for a
        row that is no reflection."""
        row = self.steps[node_id]
        if row.get("reflection_verdict") is None:
            return None
        stored = Decision(row["reflection_verdict"], basis="rollouts")
        chain = [f"reflection on the first error at node {row.get('reflects_on')}: judged on its own rollouts, "
                 "the text before it set aside"]
        replayed = self._by_rollouts(row, chain)
        return Replayed(node_id, stored, Decision(replayed.verdict, basis="rollouts"), chain)

    def _by_rollouts(self, row: dict[str, Any], chain: list[str]) -> Decision:
        mc = evidence_of(row, self.invalid)
        if mc is None:
            chain.append("nobody estimated this state: no evidence, no verdict")
            return Decision("undecided")
        if mc.source in ("correct_solution", "wrong_solution"):
            right = mc.source == "correct_solution"
            chain.append(f"a finished solution whose final answer is {'right' if right else 'wrong'}: "
                         f"{'correct' if right else 'wrong'} by definition")
        c, n = mc.graded
        if mc.source not in ("correct_solution", "wrong_solution"):
            parts = [f"{mc.n_truncated} truncated", f"{mc.n_unparseable} unparseable", f"{mc.n_timeouts} timed out"]
            flawed = f"; {mc.n_correct_flawed} right only after a step that shows an error" if mc.n_correct_flawed else ""
            chain.append(f"evidence: {c} of {n} graded rollouts right cleanly ({mc.n_rollouts} rollouts: "
                         f"{', '.join(parts)}{flawed}); MC {mc.value if mc.value is not None else 'none'}")
        if self.name != "sequential":
            d = self.threshold.decide(mc, row.get("reference_value"))
            chain.append(f"rule {self.name}: MC > {self.threshold.threshold():g} is correct -> {d.verdict}")
            return d
        assert self.params is not None and self.calibration is not None
        reference = row.get("reference_value")
        d = decide(mc, reference, self.calibration, self.params, self.own)
        if d.score is None:
            return d
        ref = self.params.default_reference if reference is None else reference
        _, q1, _, _ = hypotheses(ref, self.calibration, self.params)
        q0 = wrong_mean(ref, self.calibration, self.params, self.own)
        where = "judged without a reference (never probed by a search): the default" if reference is None else \
            "a correct prefix at this depth is expected to reach the answer"
        chain.append(f"reference: {where} {ref:.4g} of the time")
        own = ""
        if self.own is not None and self.own.graded():
            g = self.own.graded()
            own = (f"; this question's own probes: {sum(p.successes for p in g)} of {sum(p.graded for p in g)} "
                   f"right at {len(g)} wrong prefixes (its posterior)")
        cal = self.calibration
        chain.append(f"hypotheses: a correct prefix succeeds at {q1:.4g}, a wrong one at {q0:.4g} on average "
                     f"(the job's recovery {cal.recovery_mean:.4g}, concentration {cal.recovery_concentration:.3g}, "
                     f"{cal.recovery_model}, {cal.source}{own})")
        upper, lower = self.params.bounds()
        chain.append(f"score: log-likelihood ratio {d.score:.4g}; correct at >= {upper:.4g}, wrong at <= {lower:.4g}")
        if d.verdict == "correct":
            chain.append(f"decision: correct, {d.score - upper:+.4g} over the upper bound"
                         if d.score >= upper else "decision: correct at the last top-up (the likelier hypothesis, "
                         f"wrong prefixes succeeding under 1/{self.params.decisive_ratio:g} as often)")
        elif d.verdict == "wrong":
            chain.append(f"decision: wrong, {lower - d.score:+.4g} under the lower bound"
                         if d.score <= lower else "decision: wrong at the last top-up (the likelier hypothesis)")
        else:
            chain.append(f"decision: undecided ({d.more} more rollouts would be needed; the budget to "
                         f"k_max {self.params.k_max} could not settle it with a fair chance)")
        return d

    def replay_allgood(self) -> tuple[bool, list[str]]:
        """Whether the stored all-good paths are as the rule allows (none where a right answer too
        likely came through a wrong step), and the chain that says so."""
        leaves = [r for r in self.steps.values() if r.get("label_source") == "correct_solution"]
        stored = len(leaves)
        # Verified: every prefix before the last step decided correct on its rollouts (restatements,
        # which are never judged, aside).
        verified = sum(1 for r in leaves if len(path := self.path(int(r["node_id"]))) > 1 and all(
            (p.get("verdict") == "correct" and p.get("verdict_basis") == "rollouts") or p.get("verdict_basis") == "restatement"
            or (p.get("verdict") is None and self.step_checks and restates_question(self.problem["question"], p["step_text"]))
            for p in path[:-1]))
        if self.name != "sequential" or self.allgood is None:
            return True, [f"{stored} right-answer solutions stored as all-good paths (no risk recorded)"]
        assert self.params is not None and self.calibration is not None
        risk = allgood_risk(self.allgood.get("root_value"), self.calibration, self.own)
        allowed = risk is not None and risk <= self.params.allgood_max_risk
        same = risk is not None and math.isclose(risk, float(self.allgood["risk"]), rel_tol=1e-9, abs_tol=1e-12)
        chain = [f"all-good paths: the chance a right answer came through a wrong step is {risk:.4g} "
                 f"(root value {self.allgood.get('root_value')}; at most {self.params.allgood_max_risk:g} allowed): "
                 + (f"stored as sampled; {stored} stored" if allowed else
                    f"each verified first (every prefix before its last step decided correct); {verified} of {stored} stored "
                    "are")] if risk is not None else ["all-good paths: no root value, none stored"]
        return same and (allowed or verified == stored), chain

    # -- explain ---------------------------------------------------------------------------------

    def explain(self, node_id: int) -> str:
        row = self.steps.get(node_id)
        if row is None:
            raise ReplayError(f"problem {self.problem.get('problem_id')} has no node {node_id}; its nodes are "
                              f"{', '.join(map(str, sorted(self.steps)[:20]))}{' ...' if len(self.steps) > 20 else ''}")
        r = self.replay(node_id)
        step = " ".join(row["step_text"].split())
        lines = [f"node {node_id} (step {row['step_index']} of its path{', located first error' if row.get('is_first_error') else ''}): "
                 f"{step[:160]!r}{'...' if len(step) > 160 else ''}",
                 f"  stored: {r.stored.verdict} (basis {r.stored.basis})"]
        lines += [f"  {line}" for line in r.chain]
        lines.append("  recomputed: the same" if r.matches else
                     f"  recomputed: {r.replayed.verdict} (basis {r.replayed.basis}, score {r.replayed.score}): MISMATCH")
        reflection = self.replay_reflection(node_id)
        if reflection is not None:
            lines.append(f"  reflection: stored {reflection.stored.verdict} (back on track: "
                         f"{'yes' if reflection.stored.verdict == 'correct' else 'no'})")
            lines += [f"    {line}" for line in reflection.chain]
            lines.append("    recomputed: the same" if reflection.matches else
                         f"    recomputed: {reflection.replayed.verdict}: MISMATCH")
        return "\n".join(lines)
