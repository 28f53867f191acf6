"""One question's search context: the policy/verifier calls, their seeds and what they cost.

Every MC estimate is ONE `generate(prefix, n=k)` request; every sample's full text
(prefix + continuation) goes to the verifier. State here is per question, so many searches can
share one policy and one verifier as concurrent asyncio tasks.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from apsgen.config import Labelling
from apsgen.label.decision import Decision, by_text, settle
from apsgen.label.evidence import MCStats
from apsgen.label.probes import OwnRecovery
from apsgen.label.rule import make_rule
from apsgen.label.text import continuation_error, restates_question, text_error
from apsgen.policy.base import Policy, Sampling
from apsgen.problem import Problem
from apsgen.reasoning import answer_part, answer_start
from apsgen.search.result import KeptRollout
from apsgen.search.seeds import derive_seed
from apsgen.search.tree import PrefixDAG, Rollout, State

log = logging.getLogger(__name__)


class Graded(Protocol):
    """A verifier's answer on one solution (apsgen.verify.AnswerCheck is one)."""

    outcome: Any  # an outcome name, or a str enum of one: correct, wrong, no_answer, truncated, timeout


class Verifier(Protocol):
    """What the search needs of a verifier (apsgen.verify.Verifier is one; tests use stand-ins)."""

    async def acheck_batch(self, solutions: list[str], gold: str, truncated: list[bool]) -> Sequence[Graded]: ...


def outcome_name(outcome: object) -> str:
    """A verdict outcome as its plain string value (works for str enums and plain strings)."""
    return str(getattr(outcome, "value", outcome))


@dataclass
class Cost:
    n_policy_calls: int = 0
    n_rollouts: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # verifier outcome -> rollouts


class SearchContext:
    """Samples rollouts for states of one question's DAG and keeps the bill."""

    def __init__(
        self,
        problem: Problem,
        policy: Policy,
        verifier: Verifier,
        settings: Labelling,
        sampling: Sampling,
        seed: int,
        calibration: object | None = None,
        keep_rollouts: bool = False,
    ) -> None:
        self.problem = problem
        self.policy = policy
        self.verifier = verifier
        self.settings = settings
        self.search = settings.search
        self.checks = settings.steps.checks  # read each step's text (apsgen.label.text)
        self.sampling = sampling
        self.seed = seed
        self.dag = PrefixDAG()
        self.calibration = calibration
        self.rule = make_rule(settings, calibration)  # type: ignore[arg-type]
        # What the question showed of its own recovery (apsgen.search.own_recovery): an input of
        # every verdict, fixed before the first one.
        self.own_recovery: OwnRecovery | None = None
        # Why its right answers were (not) stored as all-good paths: the risk and the root value it came from.
        self.allgood_risk: float | None = None
        self.allgood_root: float | None = None
        # Right-answer solutions verified (`search.binary_search.verify_right_answer`): stored as
        # all-good after every prefix before their last step was decided correct, or found to hold a
        # first error (searched for, not counted among the selections).
        self.allgood_verified = 0
        self.allgood_hidden = 0
        self._decided = False
        # Every completion drawn, when the job keeps them (`runner.keep_rollouts`).
        self.kept: list[KeptRollout] | None = [] if keep_rollouts else None
        self.cost = Cost()
        self._calls = 0
        self._step_error: dict[int, str | None] = {}
        self._wrong_text: dict[int, str | None] = {}
        self._restates: dict[int, bool] = {}

    def know_own_recovery(self, own: OwnRecovery) -> None:
        """Judge the question against what it showed of its own recovery before its search
        (`apsgen.search.own_recovery`): set once, before any verdict by rollouts."""
        if self._decided or self.own_recovery is not None:
            raise RuntimeError("a question's own recovery is fixed before its first verdict, once")
        self.own_recovery = own

    def rule_decision(self, mc: MCStats, reference: float | None) -> Decision:
        """The label rule's verdict on this evidence, with everything else it takes fixed."""
        return self.rule.decide(mc, reference, self.own_recovery)

    def admits(self, mc: MCStats, reference: float | None) -> bool:
        """May a (non-root) state with this evidence seed binary searches? (the pool asks)"""
        return self.rule.admits(mc, reference, self.own_recovery)

    def describe_rule(self) -> str:
        """The rule, every parameter and what the question showed of its own recovery, as JSON."""
        return self.rule.describe(self.own_recovery)

    # What the step texts settle without rollouts (apsgen.label.text), memoised per state.

    def step_error(self, state: State) -> str | None:
        """What the state's own step shows wrong by its text: "arithmetic" (a false equation),
        "retraction" (it admits an earlier mistake), or None (also when `steps.checks` is off)."""
        if state.is_root or not self.checks:
            return None
        if state.node_id not in self._step_error:
            self._step_error[state.node_id] = text_error(state.step_text)
        return self._step_error[state.node_id]

    def wrong_by_text(self, state: State) -> str | None:
        """Why the prefix is wrong by its text (the first step along it that shows an error: its
        `step_error`), or None."""
        if state.is_root or not self.checks:
            return None
        chain: list[State] = []
        s: State = state
        while not s.is_root and s.node_id not in self._wrong_text:
            chain.append(s)
            s = s.parent  # type: ignore[assignment]  # only the root has no parent
        known = None if s.is_root else self._wrong_text[s.node_id]
        for t in reversed(chain):
            known = known or self.step_error(t)
            self._wrong_text[t.node_id] = known
        return self._wrong_text[state.node_id]

    def restates(self, state: State) -> bool:
        """The state's step only repeats facts of the question: it cannot be a first error."""
        if state.is_root or not self.checks:
            return False
        if state.node_id not in self._restates:
            self._restates[state.node_id] = restates_question(self.problem.question, state.step_text)
        return self._restates[state.node_id]

    def budget_left(self) -> int | None:
        """Rollouts still allowed for this question (None: no per-question budget)."""
        if self.search.rollout_budget is None:
            return None
        return max(0, self.search.rollout_budget - self.cost.n_rollouts)

    def can_afford(self, n: int) -> bool:
        left = self.budget_left()
        return left is None or left >= n

    async def sample(self, state: State, n: int) -> list[Rollout]:
        """One request for `n` continuations of `state.prefix`, graded and attached to `state`."""
        self._calls += 1
        seed = derive_seed(self.seed, self.problem.id, state.prefix, self._calls)
        gen = await self.policy.generate(
            self.problem.question, state.prefix, n, replace(self.sampling, seed=seed)
        )
        samples = gen.samples
        end = self.settings.thinking_end  # a reasoning policy's answer is read after its thinking
        verdicts = await self.verifier.acheck_batch(
            [answer_part(state.prefix + s.text, end) for s in samples],
            self.problem.answer,
            [s.truncated for s in samples],
        )
        self.cost.n_policy_calls += 1
        self.cost.n_rollouts += len(samples)
        self.cost.prompt_tokens += gen.prompt_tokens
        self.cost.generated_tokens += gen.generated_tokens
        rollouts = []
        for s, v in zip(samples, verdicts, strict=True):
            outcome = outcome_name(v.outcome)
            self.cost.outcomes[outcome] += 1
            # A right answer after a step that shows an error is a recovery (see MCStats.clean_value).
            flawed = outcome == "correct" and self.checks and continuation_error(s.text) is not None
            rollout = self.dag.add_rollout(state, s.text, s.n_tokens, outcome, flawed)
            rollouts.append(rollout)
            if self.kept is not None:
                self.kept.append(KeptRollout(rollout.rollout_id, state.node_id, state.prefix, s.text,
                                             "length" if s.truncated else "stop", getattr(v, "answer", None),
                                             outcome, flawed, s.n_tokens, self._answer_start(state.prefix, s.text)))
        return rollouts

    def _answer_start(self, prefix: str, text: str) -> int | None:
        """Where a reasoning policy's answer begins in a completion (None: still thinking, or not a
        reasoning policy; an answer begun inside the prefix starts at 0)."""
        end = self.settings.thinking_end
        if end is None:
            return None
        at = answer_start(prefix + text, end)
        return None if at is None else max(0, at - len(prefix))

    async def estimate(self, state: State) -> MCStats:
        """MC(state) from k fresh rollouts (one request), unless it is already known."""
        if state.mc is None:
            rollouts = await self.sample(state, self.search.k)
            state.mc = MCStats.from_rollouts(rollouts, self.search.invalid_rollouts)
            log.debug("problem %s node %d: MC %s", self.problem.id, state.node_id, state.mc.value)
        return state.mc

    async def decide(self, state: State, reference: float | None) -> Decision:
        """The label rule's verdict on `state`, drawing the extra rollouts it asks for (one request
        each, on the same prefix) while the budget allows. A prefix through a step that shows an
        error by its text is wrong without rollouts."""
        basis = self.wrong_by_text(state)
        if basis is not None:
            return settle(state, by_text(basis))
        return settle(state, await self.judge_rollouts(state, reference))

    async def judge_rollouts(self, state: State, reference: float | None) -> Decision:
        """The label rule's verdict on `state`'s own rollouts alone (the text before it set aside),
        drawing the extra rollouts it asks for while the budget allows. Not stored as the state's
        verdict: `decide` does that; a reflection's effect is judged with this alone."""
        self._decided = True
        mc = await self.estimate(state)
        decision = self.rule_decision(mc, reference)
        while decision.more > 0 and self.can_afford(decision.more):
            extra = await self.sample(state, decision.more)
            mc = mc.merged(MCStats.from_rollouts(extra, self.search.invalid_rollouts))
            state.mc = mc
            decision = self.rule_decision(mc, reference)
        return decision
