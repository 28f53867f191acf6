"""`apsgen bench search` runs as documented: one JSON line with a cell per rule and the baseline."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_search_prints_one_json_line_per_the_documented_shape() -> None:
    cmd = [sys.executable, "-m", "apsgen.cli.main", "bench", "search", "--problems", "20", "--recover", "0.02",
           "--k", "8", "--success", "low", "--rules", "paper,sequential,per_step_mc", "--max-searches", "10",
           "--judge-accuracy", "-1", "--jobs", "1", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout.strip().splitlines()
    assert len(out) == 1
    report = json.loads(out[0])
    assert report["default_rule"] == "sequential"
    cells = {c["rule"]: c for c in report["cells"]}
    assert set(cells) == {"paper", "sequential", "per_step_mc"}
    for c in cells.values():
        assert (c["recover"], c["success"], c["k"]) == (0.02, [0.05, 0.5], 8)
        assert 0 <= c["precision"] <= 1 and 0 <= c["recall"] <= 1
        assert c["correct_per_question"] >= 0 and c["zero_search_questions"] >= 0
    # The grid's claim in small: the default rule is not less precise than the paper's rule where
    # wrong steps recover.
    assert cells["sequential"]["precision"] >= cells["paper"]["precision"]


def test_bench_search_reports_the_reasoning_world_per_step_setting() -> None:
    cmd = [sys.executable, "-m", "apsgen.cli.main", "bench", "search", "--world", "reasoning", "--problems", "12",
           "--recover", "0.1", "--k", "8", "--success", "high", "--rules", "sequential", "--order", "shuffled",
           "--steps", "paragraphs,sections:8", "--max-searches", "10", "--judge-accuracy", "-1", "--jobs", "1", "--json"]
    report = json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout)
    cells = {c["steps"]: c for c in report["cells"]}
    assert set(cells) == {"paragraphs", "sections:8"}
    # Sections are far fewer steps than paragraphs; each setting reports what it costs and gets.
    assert cells["sections:8"]["steps_per_solution"] * 2 < cells["paragraphs"]["steps_per_solution"]
    for c in cells.values():
        assert c["world"] == "reasoning" and c["precision"] is not None and c["truncated_share"] > 0
        assert c["reflections"]["per_question"] > 0


def test_bench_prm_held_out_items_are_half_erroneous_with_the_worlds_first_error_and_half_flawless():
    from apsgen.bench.prm import held_out_items
    from apsgen.bench.search import SUCCESS, make_world
    from apsgen.eval.processbench import _item

    world = make_world("silent", 0.1, SUCCESS[1], 0.05)
    train = {p.question for p in world.problems(10, 2)}
    items = held_out_items(world, 12, 2, train)
    assert len(items) == 12 and sum(i["label"] != -1 for i in items) == 6
    assert not {i["problem"] for i in items} & train
    for i in items:
        item, why = _item(i, "bench")
        assert item is not None, why  # a ProcessBench item as `eval processbench` reads it
        assert i["final_answer_correct"] or i["label"] != -1  # a flawless item ends right
