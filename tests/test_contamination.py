"""Contamination: problems whose normalised question is in an `exclude:` dataset are dropped before
search, counted, and the count shows in `apsgen stats`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apsgen.config import DatasetSpec, SimulatedSpec, parse_spec
from apsgen.data import load_problems
from apsgen.io.stats import compute_stats
from apsgen.io.store import OutputStore
from apsgen.worlds.chain import simulated_problems

PROBLEMS = simulated_problems(n=6, spec=SimulatedSpec(min_steps=3, max_steps=5), seed=11)
MATH500 = Path(__file__).resolve().parents[2] / "shared" / "data" / "math500.jsonl"


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("contamination")
    source = jsonl(tmp / "source.jsonl", [{"question": p.question, "answer": p.answer} for p in PROBLEMS])
    # A MATH500-style benchmark (fields problem, answer) holding two of the source questions, written
    # with other spacing and case: matching is on the normalised question.
    bench = jsonl(tmp / "bench.jsonl", [
        {"problem": "  " + PROBLEMS[1].question.upper().replace(" ", "   "), "answer": "x"},
        {"problem": PROBLEMS[4].question + "\n", "answer": "y"},
        {"problem": "An unrelated benchmark question?", "answer": "3"},
    ])
    return source, bench, tmp


def exclude(bench: Path) -> dict:
    return {"path": str(bench), "question_column": "problem", "answer_column": "answer"}


def test_excluded_questions_are_dropped_and_counted(files):
    source, bench, _ = files
    report = load_problems(DatasetSpec(path=str(source), answer_format="plain"),
                           exclude=[DatasetSpec(**exclude(bench))])
    assert report.n_excluded == 2
    assert [p.id for p in report.problems] == [p.id for i, p in enumerate(PROBLEMS) if i not in (1, 4)]
    assert "2 excluded as contaminated" in report.summary()


def test_math500_as_exclude_entry(tmp_path):
    if not MATH500.is_file():
        pytest.skip(f"MATH500 not found at {MATH500}")
    first = json.loads(MATH500.read_text().splitlines()[0])
    source = jsonl(tmp_path / "source.jsonl", [{"question": first["problem"], "answer": first["answer"]},
                                                {"question": PROBLEMS[0].question, "answer": PROBLEMS[0].answer}])
    report = load_problems(DatasetSpec(path=str(source), answer_format="plain"),
                           exclude=[DatasetSpec(path=str(MATH500), question_column="problem")])
    assert report.n_excluded == 1 and [p.id for p in report.problems] == [PROBLEMS[0].id]


def test_exclude_column_error_names_the_columns(files):
    source, bench, _ = files
    with pytest.raises(ValueError, match="question column 'question' not found in .*columns are: problem, answer"):
        load_problems(DatasetSpec(path=str(source), answer_format="plain"), exclude=[DatasetSpec(path=str(bench))])


def test_a_run_never_searches_excluded_problems_and_stats_shows_the_count(files, capsys):
    from apsgen.cli.main import main
    from apsgen.runner.driver import run_job

    source, bench, tmp = files
    spec = parse_spec({
        "name": "contamination",
        "dataset": {"path": str(source), "answer_format": "plain"},
        "exclude": [exclude(bench)],
        "policy": {"backend": "simulated", "model": "simulated",
                   "simulated": {"min_steps": 3, "max_steps": 5, "success_rate": [0.5, 0.9]}},
        "search": {"k": 4, "screen_samples": 8, "max_searches": 3},
    })
    out = str(tmp / "out")
    summary = run_job(spec, output=out, show_progress=False)
    assert summary.excluded == 2 and summary.total_problems == 4
    done = set(OutputStore(out).done_ids())
    assert done == {p.id for i, p in enumerate(PROBLEMS) if i not in (1, 4)}
    assert compute_stats(out).excluded == 2
    assert main(["stats", out]) == 0
    assert "2 excluded as contaminated" in capsys.readouterr().out
