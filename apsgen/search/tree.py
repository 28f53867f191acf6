"""The prefix DAG of one question's search: states keyed by their exact prefix text, and rollouts.

Identical prefixes reached by different paths are one state, so an MC estimate is never paid twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from apsgen.label.evidence import MCStats

if TYPE_CHECKING:
    from apsgen.label.rule import Decision


@dataclass(eq=False)
class Rollout:
    """One sampled continuation of `state.prefix`, with the verifier's outcome for the full text."""

    rollout_id: int
    state: State
    text: str
    n_tokens: int
    outcome: str  # a verify.Outcome value: correct | wrong | no_answer | truncated | timeout
    selected: bool = False  # binary-searched already; a pair is selected at most once
    # A right answer whose continuation shows an error by its text (a false equation, a
    # retraction; apsgen.label.text): a recovery, which the sequential rule does not count
    # as evidence that `state` is correct. Set only with `steps.checks`.
    flawed: bool = False

    @property
    def full_text(self) -> str:
        return self.state.prefix + self.text

    @property
    def is_correct(self) -> bool:
        return self.outcome == "correct"

    @property
    def is_wrong(self) -> bool:
        """An extracted answer that is wrong: the only kind worth a binary search for its error."""
        return self.outcome == "wrong"

    @property
    def adds_text(self) -> bool:
        """False for an empty or blank continuation: it adds no step, so it holds no error of its own."""
        return bool(self.text.strip())


@dataclass(eq=False)
class State:
    """A solution prefix ending at a step boundary (the root is the empty prefix)."""

    node_id: int
    prefix: str
    parent: State | None
    step_start: int  # offset in `prefix` where this state's last step starts
    depth: int  # steps from the root along the path that created it
    mc: MCStats | None = None
    rollouts: list[Rollout] = field(default_factory=list)
    visits: int = 0  # N(s): times selected
    is_first_error: bool = False
    decision: Decision | None = None  # the label rule's last verdict on this state
    pooled: int = 0  # wrong rollouts of this state admitted to the pool
    # A reflection that retracts a located first error (apsgen.search.reflections): that error's
    # state, and the rule's verdict on this state's own rollouts (correct: back on track).
    reflects_on: State | None = None
    reflection: Decision | None = None

    @property
    def is_root(self) -> bool:
        return self.parent is None and self.prefix == ""

    @property
    def step_text(self) -> str:
        return self.prefix[self.step_start :]


class PrefixDAG:
    """All states of one question, by prefix text; node ids are assigned in creation order."""

    def __init__(self) -> None:
        self.root = State(node_id=0, prefix="", parent=None, step_start=0, depth=0)
        self._by_prefix: dict[str, State] = {"": self.root}
        self._next_rollout = 0

    def __len__(self) -> int:
        return len(self._by_prefix)

    def states(self) -> list[State]:
        return list(self._by_prefix.values())

    def get(self, prefix: str) -> State | None:
        return self._by_prefix.get(prefix)

    def state_for(self, prefix: str, parent: State, step_start: int) -> State:
        """The state with this exact prefix, created under `parent` if new (first path wins)."""
        state = self._by_prefix.get(prefix)
        if state is None:
            state = State(
                node_id=len(self._by_prefix),
                prefix=prefix,
                parent=parent,
                step_start=step_start,
                depth=parent.depth + 1,
            )
            self._by_prefix[prefix] = state
        return state

    def path(self, start: State, text: str, boundaries: list[int]) -> list[State]:
        """States along `start.prefix + text`, one per step end (boundaries, then the end of text).

        `boundaries` are offsets into the full text. Returns [step 1 state, ..., full-text state].
        """
        full = start.prefix + text
        states: list[State] = []
        parent, begin = start, len(start.prefix)
        for end in [*boundaries, len(full)]:
            state = self.state_for(full[:end], parent, begin)
            states.append(state)
            parent, begin = state, end
        return states

    def add_rollout(self, state: State, text: str, n_tokens: int, outcome: str, flawed: bool = False) -> Rollout:
        rollout = Rollout(self._next_rollout, state, text, n_tokens, outcome, flawed=flawed)
        self._next_rollout += 1
        state.rollouts.append(rollout)
        return rollout
