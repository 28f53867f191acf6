"""The whole search tree is stored: every state has a row and a parent that has one, correct
solutions come along as all-good paths, and exports follow ids (never text) on such output."""

from __future__ import annotations

from known_output import WHEN
from search_support import EASY, search_all

from apsgen.config import Labelling
from apsgen.io.rows import Provenance, step_rows
from apsgen.paths import solution_paths, tree_parents

PROV = Provenance("simulated", None, "h", "{}", "{}", "v", "0.1.0", "f" * 16)


def _trees():
    problems, results = search_all(EASY, Labelling.of(max_searches=6, screen_samples=16), n=6)
    return [step_rows(p, r, PROV, WHEN) for p, r in zip(problems, results) if r.status == "searched"]


def test_every_state_has_a_row_and_every_parent_is_a_row():
    trees = _trees()
    assert trees
    unestimated = 0
    for rows in trees:
        ids = {r["node_id"] for r in rows}
        assert all(r["parent_id"] is None or r["parent_id"] in ids for r in rows)
        for r in rows:
            if r["parent_id"] is not None:
                parent = next(p for p in rows if p["node_id"] == r["parent_id"])
                assert r["prefix"] == parent["prefix"] + parent["step_text"]
            if r["label_source"] == "unestimated":
                unestimated += 1
                assert r["mc_value"] is None and r["n_rollouts"] == 0
        correct_ends = [r for r in rows if r["label_source"] == "correct_solution"]
        assert 1 <= len(correct_ends) <= Labelling().search.correct_paths
        assert all(r["mc_value"] == 1.0 for r in correct_ends)
    assert unestimated > 0, "the binary search leaves states without an estimate; they must be stored"


def test_paths_follow_ids_and_correct_solutions_are_all_good():
    for rows in _trees():
        parents = tree_parents(rows)
        assert parents == {r["node_id"]: r["parent_id"] for r in rows}
        paths = solution_paths(rows)
        by_id = {r["node_id"]: r for r in rows}
        correct = [p for p in paths if p.correct]
        assert correct and len(correct) == sum(r["label_source"] == "correct_solution" for r in rows)
        for p in correct:
            end = by_id[p.end_node]
            # Every state of the solution is a step; the steps rebuild the solution's text.
            assert len(p.segments) == end["step_index"] + 1
            assert "".join(s.text for s in p.segments) == end["prefix"] + end["step_text"]
        for p in paths:
            if not p.correct:
                # an estimated state, or one whose step text settled it (no rollouts spent)
                assert all(s.mc_value is not None or by_id[s.node_id]["verdict_basis"] in ("arithmetic", "restatement")
                           for s in p.segments)
                assert not any(s.is_first_error for s in p.segments[:-1])
        assert [q for q in paths if not q.correct] == solution_paths(rows, correct_paths=False)
