"""The rollout pool and OmegaPRM's selection rule: argmax over (state, wrong rollout) of Q + U.

Q(s, r) = alpha^(1 - MC(s)) * beta^(len(r) / L) prefers states that are almost right and short
wrong rollouts; U(s) = c_puct * sqrt(sum_s' N(s')) / (1 + N(s)) prefers rarely visited states.
A selected pair leaves the pool for good and only its state's N grows, so U does its job.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from apsgen.config import SearchSpec
from apsgen.label.evidence import MCStats
from apsgen.label.rule import LabelRule
from apsgen.search.tree import Rollout, State


def q_value(mc: float, rollout_tokens: int, alpha: float, beta: float, length_scale: int) -> float:
    return alpha ** (1.0 - mc) * beta ** (rollout_tokens / length_scale)


def u_value(visits: int, total_visits: int, c_puct: float) -> float:
    return c_puct * math.sqrt(total_visits) / (1 + visits)


class Pool:
    """Candidate (state, wrong rollout) pairs, admitted by the label rule.

    The root's wrong rollouts are always searchable under the default rule (the empty prefix
    cannot hold an error). A non-root state joins only when the rule is sure it is correct
    (stricter than a probe's decision) and then with at most `pool_max_per_state` rollouts, so a
    state that is wrong after all cannot fill the pool with searches for an error before it.
    """

    def __init__(self, search: SearchSpec, rule: LabelRule,
                 admits: Callable[[MCStats, float | None], bool] | None = None) -> None:
        """`admits`: the rule's admission test with the question's other inputs fixed (the search
        context's); default: the rule's own, for a question without any."""
        self.search = search
        self.rule = rule
        self._rule_admits = admits or rule.admits
        self._items: list[Rollout] = []  # insertion order breaks ties, so selection is deterministic
        self._ids: set[int] = set()
        self.total_visits = 0  # sum of N(s) over all states

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._items)

    def _admits(self, state: State) -> bool:
        mc = state.mc
        if mc is None or mc.value is None:
            return False
        if state.is_root:
            return self.rule.admits_root(mc)
        cap = self.rule.max_per_state()
        if cap is not None and state.pooled >= cap:
            return False
        reference = state.decision.reference if state.decision is not None else None
        return self._rule_admits(mc, reference)

    def offer(self, rollouts: list[Rollout]) -> int:
        """Add the eligible rollouts; returns how many joined."""
        added = 0
        for r in rollouts:
            if r.selected or not r.is_wrong or not r.adds_text or r.rollout_id in self._ids:
                continue
            if not self._admits(r.state):
                continue
            self._items.append(r)
            self._ids.add(r.rollout_id)
            r.state.pooled += 1
            added += 1
        return added

    def score(self, r: Rollout) -> float:
        s = self.search
        assert r.state.mc is not None and r.state.mc.value is not None
        q = q_value(r.state.mc.value, r.n_tokens, s.alpha, s.beta, s.length_scale)
        return q + u_value(r.state.visits, self.total_visits, s.c_puct)

    def select(self) -> Rollout | None:
        """Remove and return the best pair; count the visit on its state."""
        if not self._items:
            return None
        best_i, best = 0, self.score(self._items[0])
        for i in range(1, len(self._items)):
            v = self.score(self._items[i])
            if v > best:
                best_i, best = i, v
        r = self._items.pop(best_i)
        self._ids.discard(r.rollout_id)
        r.selected = True
        r.state.visits += 1
        self.total_visits += 1
        return r
