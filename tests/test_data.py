"""Loading problems: the shared GSM8K and MATH500 files, column mapping, broken rows, ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apsgen.config import DatasetSpec, parse_spec
from apsgen.data import DatasetError, gold_answer, load_problems, problem_id


def test_gsm8k_loads_with_a_one_line_spec(shared_data: Path):
    spec = parse_spec({"name": "g", "dataset": {"path": str(shared_data / "gsm8k_test.jsonl")}})
    report = load_problems(spec.dataset)
    assert len(report.problems) == 1319 and not report.bad_rows
    first = report.problems[0]
    assert first.answer == "18" and first.question.startswith("Janet")
    # thousands separators in GSM8K's '#### 1,450,000' are stripped
    assert all("," not in p.answer for p in report.problems)


def test_math500_loads_with_a_one_line_spec(shared_data: Path):
    spec = parse_spec({"name": "m", "dataset": {"path": str(shared_data / "math500.jsonl"), "question_column": "problem"}})
    report = load_problems(spec.dataset)
    assert len(report.problems) == 500
    assert report.problems[0].answer == r"\left( 3, \frac{\pi}{2} \right)"


def test_boxed_solution_column(shared_data: Path):
    spec = DatasetSpec(path=str(shared_data / "math500.jsonl"), question_column="problem",
                       answer_column="solution", answer_format="boxed", limit=50)
    answers = {p.question: p.answer for p in load_problems(spec).problems}
    plain = {p.question: p.answer for p in load_problems(
        DatasetSpec(path=str(shared_data / "math500.jsonl"), question_column="problem", limit=50)).problems}
    same = sum(answers[q] == plain[q] for q in answers)
    assert len(answers) == 50 and same >= 45  # the boxed form is the answer column for (nearly) all rows


def test_limit_shuffle_seed_are_deterministic(shared_data: Path):
    path = str(shared_data / "gsm8k_test.jsonl")
    a = load_problems(DatasetSpec(path=path, shuffle=True, seed=3, limit=5)).problems
    b = load_problems(DatasetSpec(path=path, shuffle=True, seed=3, limit=5)).problems
    c = load_problems(DatasetSpec(path=path, shuffle=True, seed=4, limit=5)).problems
    assert [p.id for p in a] == [p.id for p in b] != [p.id for p in c]
    assert len(a) == 5


def test_broken_rows_are_reported_and_counted_not_fatal(tmp_path: Path):
    rows = [
        {"q": "What is 1+1?", "a": "2"},
        {"q": "", "a": "3"},
        {"q": "What is 2+2?", "a": None},
        {"q": "What is 3+3?", "a": "Six is it.\n#### 6"},
        {"q": "What is 1+1?", "a": "2"},  # duplicate
        {"q": "What is 4+4?", "a": "no gsm8k marker here"},
    ]
    f = tmp_path / "broken.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = load_problems(DatasetSpec(path=str(f), question_column="q", answer_column="a"))
    assert [p.answer for p in report.problems] == ["2", "6", "no gsm8k marker here"]
    assert [b.row for b in report.bad_rows] == [1, 2]
    assert "question" in report.bad_rows[0].reason and "missing answer ('a')" in report.bad_rows[1].reason
    assert report.n_duplicates == 1
    strict = load_problems(DatasetSpec(path=str(f), question_column="q", answer_column="a", answer_format="gsm8k"))
    assert [p.answer for p in strict.problems] == ["6"]
    assert [b.row for b in strict.bad_rows] == [0, 1, 2, 4, 5]
    assert "no gsm8k answer in 'a'" in strict.bad_rows[0].reason


def test_missing_column_and_file_errors_name_the_value(tmp_path: Path, shared_data: Path):
    with pytest.raises(DatasetError) as e:
        load_problems(DatasetSpec(path=str(shared_data / "gsm8k_test.jsonl"), answer_column="solution"))
    assert "'solution'" in str(e.value) and "columns are: question, answer" in str(e.value)
    with pytest.raises(DatasetError, match="not found"):
        load_problems(DatasetSpec(path=str(tmp_path / "missing.jsonl")))


def test_csv_and_parquet_load(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "p.csv").write_text("question,answer\nWhat is 5*5?,25\n")
    pq.write_table(pa.table({"question": ["What is 6*6?"], "answer": ["36"]}), tmp_path / "p.parquet")
    assert load_problems(DatasetSpec(path=str(tmp_path / "p.csv"))).problems[0].answer == "25"
    assert load_problems(DatasetSpec(path=str(tmp_path / "p.parquet"))).problems[0].answer == "36"


def test_ids_are_stable_and_whitespace_insensitive():
    assert problem_id("What is  1+1?", "2") == problem_id("what is 1+1? ", " 2")
    assert problem_id("What is 1+1?", "2") != problem_id("What is 1+1?", "3")
    assert gold_answer("so \\boxed{\\frac{1}{2}} done", "auto") == "\\frac{1}{2}"
    assert gold_answer("x\n#### 1,234", "auto") == "1234"


@pytest.mark.parametrize(
    ("solution", "gold"),
    [
        ("So $x = \\boxed{2}$, and again $\\boxed{2}$.", "2"),
        ("This is $15\\frac{39}{40}$, that is $\\boxed{15\\frac{39}{40}} = \\boxed{\\frac{639}{40}}$.", "\\frac{639}{40}"),
        ("We need \\boxed{1} paper and \\boxed{2} bins.", "1, 2"),
        ("The roots are \\(\\boxed{3}\\) and \\(\\boxed{-2}\\).", "3, -2"),
        ("First \\boxed{4} was a guess; after checking every case we find \\boxed{5}.", "5"),
    ],
)
def test_a_gold_solution_with_several_boxes(solution: str, gold: str) -> None:
    assert gold_answer(solution, "auto") == gold


@pytest.mark.parametrize(("text", "gold"), [
    ("Monday leaves 90, Tuesday 72.\n\nFinal Answer: The final answer is $28\\%$. I hope it is correct.", "28\\%"),
    ("We add 9 and 14. The answer is 23.", "23"),
    ("17", "17"),  # a plain answer stays as it is
    ("Half of the apples are red", "Half of the apples are red"),  # no announced answer: plain
])
def test_a_worked_gold_solution_without_a_box_gives_its_announced_answer(text: str, gold: str) -> None:
    assert gold_answer(text, "auto") == gold
