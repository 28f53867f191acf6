"""Exports: a small known tree pinned to its exact rows in every format, thresholds, layout, TRL."""

from __future__ import annotations

import json

import datasets
import pyarrow.parquet as pq
import pytest
from known_output import KNOWN_TREE, Q, make_output, problem, step

from apsgen.io.export import ExportError, export
from apsgen.paths import Segment, soft_label, solution_paths

@pytest.fixture
def known(tmp_path):
    return make_output(tmp_path / "out")


def read(dest, fmt):
    return pq.read_table(f"{dest}/{fmt}/part-00000.parquet").to_pylist()


def test_paths_fold_unannotated_and_unlabelled_states_and_stop_at_first_error():
    # KNOWN_TREE is a version-1 output: node 2 has no row, so node 3's parent is found by text.
    paths = solution_paths(KNOWN_TREE)
    assert [(p.end_node, p.correct) for p in paths] == [(4, False), (8, False), (7, True)]
    assert [[s.text for s in p.segments] for p in paths] == [
        ["A\n\n", "B\n\nC\n\n", "D\n\n"],
        ["A\n\n", "G"],
        # A correct solution keeps every stored state as a step, estimated or not.
        ["A\n\n", "B\n\nC\n\n", "E\n\n", "F \\boxed{9}"],
    ]
    assert [p.end_node for p in solution_paths(KNOWN_TREE, correct_paths=False)] == [4, 8]
    # The segments of a path always rebuild its end state's full text.
    for p in paths:
        end = next(r for r in KNOWN_TREE if r["node_id"] == p.end_node)
        assert "".join(s.text for s in p.segments) == end["prefix"] + end["step_text"]


def test_a_soft_label_is_the_rules_certainty_where_it_has_one():
    # A correct solution's step: certain. A step wrong by its text: certainly wrong, however often its
    # completions recovered. The sequential rule's score: its posterior at even prior odds. Else MC.
    assert soft_label(Segment(1, "A", None, False, on_correct_path=True), True) == 1.0
    assert soft_label(Segment(1, "A", 0.5, True, verdict="wrong", basis="arithmetic"), False) == 0.0
    assert soft_label(Segment(1, "A", 0.5, False, verdict="correct", score=0.0, basis="rollouts"), True) == 0.5
    assert soft_label(Segment(1, "A", 0.5, False, verdict="correct", score=3.0), True) > 0.95
    assert soft_label(Segment(1, "A", 0.25, False, verdict="correct"), True) == 0.25


def test_math_aps_rows(known, tmp_path):
    export(known, ["math-aps"], str(tmp_path / "x"))
    assert read(tmp_path / "x", "math-aps") == [
        {"question": Q, "process": "A", "label": "+"},
        {"question": Q, "process": "A\n\nB\n\nC", "label": "+"},
        {"question": Q, "process": "A\n\nB\n\nC\n\nD", "label": "-"},
        {"question": Q, "process": "A\n\nB\n\nC\n\nD\n\nX", "label": "-"},
        {"question": Q, "process": "A\n\nB\n\nC\n\nE\n\nF \\boxed{9}", "label": "+"},
        {"question": Q, "process": "A\n\nG", "label": "-"},  # 0.5 is not > 0.5
    ]


def test_math_shepherd_rows(known, tmp_path):
    export(known, ["math-shepherd"], str(tmp_path / "x"))
    assert read(tmp_path / "x", "math-shepherd") == [
        {"input": f"{Q} A ки\nB\n\nC ки\nD ки", "label": f"{Q} A +\nB\n\nC +\nD -", "task": "toy"},
        {"input": f"{Q} A ки\nG ки", "label": f"{Q} A +\nG -", "task": "toy"},
        {"input": f"{Q} A ки\nB\n\nC ки\nE ки\nF \\boxed{{9}} ки", "label": f"{Q} A +\nB\n\nC +\nE +\nF \\boxed{{9}} +",
         "task": "toy"},
    ]


# Soft labels: without the sequential rule's scores, a searched path's MC values; a correct path's 1.
# first_error indexes the located first error among the steps (a search's, not any - label); no
# reflection in this output.
NO_REFLECTION = {"reflection": None, "reflection_verdict": None}
STEPWISE_ROWS = [
    {"prompt": Q, "completions": ["A", "B\n\nC", "D"], "labels": [True, True, False],
     "soft_labels": [1.0, 0.75, 0.0], "mc_values": [1.0, 0.75, 0.0], "first_error": 2, **NO_REFLECTION},
    {"prompt": Q, "completions": ["A", "G"], "labels": [True, False], "soft_labels": [1.0, 0.5], "mc_values": [1.0, 0.5],
     "first_error": None, **NO_REFLECTION},  # its - is an estimate no search located as a first error
    {"prompt": Q, "completions": ["A", "B\n\nC", "E", "F \\boxed{9}"], "labels": [True, True, True, True],
     "soft_labels": [1.0, 1.0, 1.0, 1.0], "mc_values": [1.0, 0.75, None, 0.625], "first_error": None, **NO_REFLECTION},
]


def test_stepwise_rows_and_the_trl_alias(known, tmp_path):
    export(known, ["stepwise"], str(tmp_path / "x"))
    assert read(tmp_path / "x", "stepwise") == STEPWISE_ROWS
    export(known, ["trl"], str(tmp_path / "y"))
    assert read(tmp_path / "y", "stepwise") == STEPWISE_ROWS
    export(known, ["stepwise"], str(tmp_path / "z"), correct_paths=False)
    assert read(tmp_path / "z", "stepwise") == STEPWISE_ROWS[:2]


def test_qwen_prm_rows(known, tmp_path):
    export(known, ["qwen-prm"], str(tmp_path / "x"))
    assert read(tmp_path / "x", "qwen-prm") == [
        {"query": Q, "response": "A<extra_0>B\n\nC<extra_0>D<extra_0>", "labels": [True, True, False],
         "mc_values": [1.0, 0.75, 0.0], "first_error": 2, **NO_REFLECTION},
        {"query": Q, "response": "A<extra_0>G<extra_0>", "labels": [True, False], "mc_values": [1.0, 0.5],
         "first_error": None, **NO_REFLECTION},
        {"query": Q, "response": "A<extra_0>B\n\nC<extra_0>E<extra_0>F \\boxed{9}<extra_0>",
         "labels": [True, True, True, True], "mc_values": [1.0, 0.75, None, 0.625], "first_error": None,
         **NO_REFLECTION},
    ]


def test_threshold_is_applied_at_export(known, tmp_path):
    export(known, ["math-aps", "stepwise"], str(tmp_path / "x"), threshold=0.0)
    assert [r["label"] for r in read(tmp_path / "x", "math-aps")] == ["+", "+", "-", "-", "+", "+"]
    assert read(tmp_path / "x", "stepwise")[1]["labels"] == [True, True]
    meta = pq.read_schema(tmp_path / "x" / "stepwise" / "part-00000.parquet").metadata
    assert meta[b"apsgen_threshold"] == b"0.0"


def test_jsonl_on_request_and_default_destination(known):
    report = export(known, ["all"], jsonl=True)
    assert set(report.rows) == {"math-aps", "math-shepherd", "stepwise", "qwen-prm"}
    lines = open(f"{known}/exports/stepwise/part-00000.jsonl").read().splitlines()
    assert [json.loads(x) for x in lines] == read(f"{known}/exports", "stepwise")


def test_reexport_replaces_old_parts(tmp_path):
    out = make_output(tmp_path / "out")
    stale = tmp_path / "x" / "stepwise" / "part-00007.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    export(out, ["stepwise"], str(tmp_path / "x"))
    assert sorted(p.name for p in stale.parent.iterdir()) == ["part-00000.parquet"]


def test_errors_name_the_value(known, tmp_path):
    with pytest.raises(ExportError, match="unknown export format 'prm800k'.*math-aps"):
        export(known, ["prm800k"], str(tmp_path / "x"))
    with pytest.raises(ExportError, match="threshold 1.5"):
        export(known, ["trl"], str(tmp_path / "x"), threshold=1.5)
    with pytest.raises(ExportError, match="no apsgen output at"):
        export(str(tmp_path / "nothing"), ["trl"])


def test_stepwise_export_loads_with_datasets_as_prm_trainers_read_it(known, tmp_path):
    export(known, ["stepwise"], str(tmp_path / "x"))
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "x" / "stepwise" / "*.parquet"), split="train")
    feats = ds.features
    assert feats["prompt"] == datasets.Value("string")
    assert feats["completions"].feature == datasets.Value("string")
    assert feats["labels"].feature == datasets.Value("bool")
    assert feats["mc_values"].feature == datasets.Value("float64")
    for row in ds:
        assert isinstance(row["prompt"], str)
        assert len(row["completions"]) == len(row["labels"]) == len(row["mc_values"]) > 0


def test_trl_1x_prm_tokenizes_the_stepwise_export(known, tmp_path):
    """TRL 1.x's own PRM row tokenizer (`trl.experimental.prm`, what axolotl 0.19's PRM training
    imports; axolotl's `stepwise_supervised` strategy tokenises the same way) reads every row."""
    prm = pytest.importorskip("trl.experimental.prm", reason="needs trl 1.9-1.13, which apsgen no longer installs (pip install 'trl==1.9.0')")
    from apsgen.models import is_prepared, model_dir

    if not is_prepared("smollm2-135m"):
        pytest.skip("demo model not prepared (apsgen models prepare smollm2-135m)")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir("smollm2-135m")))
    export(known, ["stepwise"], str(tmp_path / "x"))
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "x" / "stepwise" / "*.parquet"), split="train")
    assert ds.num_rows == 3
    for row in ds:
        out = prm.PRMTrainer.tokenize_row(row, tok, "\n", None, None, False, False)
        labelled = [x for x in out["labels"] if x != -100]
        # One label per step, at the step's last token, in order.
        assert labelled == [int(x) for x in row["labels"]]
        assert len(out["input_ids"]) == len(out["labels"])


# A hard-but-correct first step the rule called correct on MC 0.25, a lucky wrong prefix (MC 1/8) it
# called wrong, and a state it left undecided.
VERDICT_TREE = [
    step(1, None, "", "A\n\n", 0.25, verdict="correct"),
    step(2, 1, "A\n\n", "B\n\n", 0.125, verdict="wrong", first_error=True),
    step(3, 2, "A\n\nB\n\n", "C", 0.0, source="wrong_solution", verdict="wrong"),
    step(4, 1, "A\n\n", "U\n\n", 0.5, verdict="undecided"),
    step(5, 4, "A\n\nU\n\n", "V", 0.0, source="wrong_solution", verdict="wrong"),
]


def test_exports_label_by_the_stored_verdict(tmp_path):
    out = make_output(tmp_path / "out", VERDICT_TREE, [problem("p1", n_steps=5)])
    report = export(out, ["stepwise", "math-aps"], str(tmp_path / "x"))
    assert "stored verdict" in report.render()
    assert [(r["completions"], r["labels"]) for r in read(tmp_path / "x", "stepwise")] == [
        (["A", "B"], [True, False]),  # the verdict, not MC > 0.5, labels A and B
        (["A"], [True]),  # the undecided state ends the path before it: no label is invented
    ]
    assert [(r["process"], r["label"]) for r in read(tmp_path / "x", "math-aps")] == [
        ("A", "+"), ("A\n\nB", "-"), ("A\n\nB\n\nC", "-"), ("A\n\nU\n\nV", "-"),
    ]


def test_threshold_relabels_from_mc_and_no_plus_follows_a_minus(tmp_path):
    out = make_output(tmp_path / "out", VERDICT_TREE, [problem("p1", n_steps=5)])
    export(out, ["stepwise"], str(tmp_path / "t0"), threshold=0.0)
    assert [r["labels"] for r in read(tmp_path / "t0", "stepwise")] == [[True, True], [True, True, False]]
    export(out, ["stepwise"], str(tmp_path / "t5"), threshold=0.5)
    # A (0.25) is "-" at 0.5, so both paths end there: nothing after a "-", and the two labelled
    # paths are now the same training row, written once.
    assert [(r["completions"], r["labels"]) for r in read(tmp_path / "t5", "stepwise")] == [(["A"], [False])]


def test_rows_written_before_verdicts_were_stored_still_export():
    from apsgen.io.export.formats import stepwise_rows

    legacy = [{k: v for k, v in r.items() if k not in ("verdict", "reference_value", "parent_mc", "label_rule")} for r in KNOWN_TREE]
    assert [r["labels"] for r in stepwise_rows(legacy, None, True)] == [r["labels"] for r in STEPWISE_ROWS]
