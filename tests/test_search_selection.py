"""OmegaPRM selection: Q and U on hand-computed cases, a pair selected once, N driving U."""

from __future__ import annotations

import math

import pytest

from apsgen.config import Labelling
from apsgen.label.evidence import MCStats
from apsgen.label.rule import make_rule
from apsgen.search.selection import Pool, q_value, u_value
from apsgen.search.tree import PrefixDAG


def paper_pool(**spec: object) -> Pool:
    """A pool under the paper's rule unless `label_rule` says otherwise (its selection is the paper's)."""
    search = Labelling.of(**{"label_rule": "paper", **spec})  # type: ignore[arg-type]
    return Pool(search.search, make_rule(search))


def test_q_value_hand_computed() -> None:
    # alpha^(1 - 0.5) * beta^(250 / 500) = sqrt(0.5) * sqrt(0.9)
    assert q_value(0.5, 250, 0.5, 0.9, 500) == pytest.approx(math.sqrt(0.45))
    assert q_value(1.0, 0, 0.5, 0.9, 500) == pytest.approx(1.0)
    # A nearly-right state beats a doubtful one; a short rollout beats a long one.
    assert q_value(0.875, 100, 0.5, 0.9, 500) > q_value(0.125, 100, 0.5, 0.9, 500)
    assert q_value(0.5, 50, 0.5, 0.9, 500) > q_value(0.5, 900, 0.5, 0.9, 500)


def test_u_value_hand_computed() -> None:
    assert u_value(0, 0, 0.125) == 0.0
    assert u_value(1, 4, 0.125) == pytest.approx(0.125 * 2 / 2)
    assert u_value(0, 9, 0.125) == pytest.approx(0.375)


def _dag_with(states: dict[str, float], rollouts_per_state: int, tokens: int = 100):  # type: ignore[no-untyped-def]
    dag = PrefixDAG()
    out = {}
    for name, mc in states.items():
        s = dag.state_for(name, dag.root, 0)
        k = 8
        s.mc = MCStats(n_rollouts=k, n_correct=round(mc * k), n_wrong=k - round(mc * k))
        out[name] = (s, [dag.add_rollout(s, f"{name}-{i}", tokens, "wrong") for i in range(rollouts_per_state)])
    return dag, out


def test_a_pair_is_never_selected_twice() -> None:
    _, states = _dag_with({"a": 0.5, "b": 0.25}, 3)
    pool = paper_pool()
    everything = [r for _, rs in states.values() for r in rs]
    assert pool.offer(everything) == 6
    seen = []
    while (r := pool.select()) is not None:
        seen.append(r.rollout_id)
        assert pool.offer(everything) == 0  # selected pairs cannot come back; pending ones are not doubled
    assert sorted(seen) == sorted(r.rollout_id for r in everything)


def test_visit_counts_drive_u() -> None:
    # Equal Q everywhere: without U the first-inserted state would win every time.
    _, states = _dag_with({"a": 0.5, "b": 0.5}, 2)
    pool = paper_pool()
    pool.offer([r for _, rs in states.values() for r in rs])
    first = pool.select()
    second = pool.select()
    assert first is not None and second is not None
    assert first.state is states["a"][0] and second.state is states["b"][0]
    assert states["a"][0].visits == 1 and states["b"][0].visits == 1
    assert pool.total_visits == 2
    # Score check: U(s) = c * sqrt(2) / (1 + 1) for both states now.
    r = next(iter(pool))
    expected = q_value(0.5, 100, 0.5, 0.9, 500) + 0.125 * math.sqrt(2) / 2
    assert pool.score(r) == pytest.approx(expected)


def test_q_prefers_the_surer_state_until_u_catches_up() -> None:
    _, states = _dag_with({"sure": 0.875, "doubtful": 0.125}, 3)
    pool = paper_pool(c_puct=1.0)
    pool.offer([r for _, rs in states.values() for r in rs])
    order = [pool.select().state.prefix for _ in range(3)]  # type: ignore[union-attr]
    assert order[0] == "sure"
    assert "doubtful" in order  # a large c_puct lets the unvisited state through


def test_pool_admits_only_wrong_rollouts_of_uncertain_states() -> None:
    dag = PrefixDAG()
    certain_wrong = dag.state_for("x", dag.root, 0)
    certain_wrong.mc = MCStats(n_rollouts=8, n_correct=0, n_wrong=8)
    certain_right = dag.state_for("y", dag.root, 0)
    certain_right.mc = MCStats(n_rollouts=8, n_correct=8, n_wrong=0)
    open_state = dag.state_for("z", dag.root, 0)
    open_state.mc = MCStats(n_rollouts=8, n_correct=1, n_wrong=7)
    candidates = [
        dag.add_rollout(certain_wrong, "a", 5, "wrong"),
        dag.add_rollout(certain_right, "b", 5, "wrong"),
        dag.add_rollout(open_state, "c", 5, "correct"),
        dag.add_rollout(open_state, "d", 5, "truncated"),
        dag.add_rollout(open_state, "e", 5, "wrong"),
    ]
    pool = paper_pool()
    assert pool.offer(candidates) == 1
    # With mc_threshold 1/8 an MC of exactly 1/8 no longer counts as "some right".
    assert paper_pool(label_rule="threshold", mc_threshold=0.125).offer(candidates) == 0
    assert paper_pool(label_rule="threshold", pool_min_mc=0.125).offer(candidates) == 0
