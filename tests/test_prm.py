"""From labels to a PRM and back: a simulated run's stepwise export trains the demo model on CPU
with a plain transformers Trainer (`apsgen train prm`, hard and soft labels, no TRL), and `apsgen
eval processbench --prm` scores the PRM the way ProcessBench scores PRMs, on the simulated fixture
and on real ProcessBench files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from apsgen.cli.main import main
from apsgen.eval.prm import Scored, first_under, fit_threshold
from apsgen.eval.processbench import Item, Prediction, accuracies
from apsgen.prm.score import QWEN_STEP_TOKEN, PRM, TRAINED_INFO, PRMError, layout_of, load_prm
from apsgen.prm.train import load_rows, train_prm
from tests.conftest import REPO

pytestmark = pytest.mark.slow

FIXTURES = REPO / "tests" / "fixtures"
SHORT, LONG = FIXTURES / "processbench_sim_short.json", FIXTURES / "processbench_sim_long.json"
NEW_SOLUTION = ("Start with 5. Then, in order: add 3; add 4. What is the final value?",
                ["Step 1: 5 + 3 = 8.", "Step 2: 8 + 4 = 13.", "The answer is \\boxed{13}."])


def _demo_model() -> Path:
    from apsgen.models import is_prepared, model_dir

    if not is_prepared("smollm2-135m"):
        pytest.fail("the demo model is not prepared: run `apsgen models prepare smollm2-135m` (make test does)")
    return model_dir("smollm2-135m")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    """A simulated job (60 questions), its stepwise export, and a PRM trained on it for 24 steps.

    60 questions give about 200 rows, so the 32 held out are a fair sample of the labels: with 30
    questions and 16 held out, whether the held-out loss fell depended on which rows the split drew."""
    from apsgen.config import parse_spec
    from apsgen.io.export import export
    from apsgen.runner.driver import run_job

    _demo_model()
    root = tmp_path_factory.mktemp("prm")
    spec = parse_spec({
        "name": "prm", "seed": 0, "dataset": {"path": "simulated", "limit": 60},
        "policy": {"backend": "simulated", "model": "simulated",
                   "simulated": {"min_steps": 2, "max_steps": 4, "success_rate": [0.5, 0.9], "tokens_per_step": 6}},
        "search": {"k": 4, "screen_samples": 8, "max_searches": 6},
        "runner": {"num_workers": 1, "max_concurrent_trees": 16}, "output": str(root / "out"),
    })
    run_job(spec, show_progress=False)
    export(str(root / "out"), ["stepwise"], str(root / "x"))
    assert main(["train", "prm", str(root / "x"), "--model", "smollm2-135m", "--output", str(root / "prm"),
                 "--steps", "24", "--lr", "3e-5", "--max-length", "128", "--held-out", "32", "--json"]) == 0
    report = json.loads((root / "prm" / TRAINED_INFO).read_text())
    report["export"] = str(root / "x")
    return root / "prm", report


def test_training_lowers_the_held_out_loss_and_the_saved_prm_scores_a_new_solution(trained) -> None:
    folder, report = trained
    assert report["steps"] == 24 and report["held_out"] == 32 and report["rows"] > report["held_out"]
    # The loss on rows the trainer never stepped on falls (the head starts random).
    assert report["held_out_loss_after"] < report["held_out_loss_before"]
    import sys

    assert not any(m == "trl" or m.startswith("trl.") for m in sys.modules)  # trained without TRL
    from transformers import AutoModelForTokenClassification

    assert AutoModelForTokenClassification.from_pretrained(str(folder)).config.num_labels == 2
    prm = load_prm(folder, device="cpu")
    assert prm.layout == "token-classification" and prm.separator == "\n"  # read from apsgen_prm.json
    question, steps = NEW_SOLUTION
    scores = prm.score(question, steps)
    assert len(scores) == len(steps) and all(0.0 < x < 1.0 for x in scores)
    # Reloaded, it gives the same scores; each score sits on the last token of a step's separator.
    assert load_prm(folder, device="cpu").score(question, steps) == pytest.approx(scores, abs=1e-6)
    ids, positions = prm.encode(question, steps)
    newline = prm.tokenizer("\n", add_special_tokens=False)["input_ids"][-1]
    assert len(positions) == 3 and all(ids[p] == newline for p in positions) and positions[-1] == len(ids) - 1


def test_soft_labels_train_and_a_stopped_run_resumes(trained, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # Soft targets: the label rule's certainty that a step is right (the export's soft_labels).
    _, hard = trained
    out = tmp_path / "soft"
    args = ["train", "prm", hard["export"], "--model", "smollm2-135m", "--output", str(out), "--labels", "soft",
            "--lr", "3e-5", "--max-length", "128", "--held-out", "32", "--save-steps", "6"]
    assert main([*args, "--steps", "6"]) == 0
    first = json.loads((out / TRAINED_INFO).read_text())
    assert first["settings"]["labels"] == "soft" and (out / "checkpoints" / "checkpoint-6").is_dir()
    # Asked for more steps, a resumed run starts at the checkpoint and takes only the rest.
    assert main([*args, "--steps", "18", "--resume"]) == 0
    report = json.loads((out / TRAINED_INFO).read_text())
    assert report["resumed_from"].endswith("checkpoint-6") and report["steps"] == 18
    assert report["held_out_loss_after"] < first["held_out_loss_before"]
    assert load_prm(out, device="cpu").score(*NEW_SOLUTION)
    # Resuming another training into the same checkpoints is refused, naming what differs.
    assert main([*[a if a != "3e-5" else "1e-4" for a in args], "--steps", "20", "--resume"]) == 2
    assert "learning_rate: 3e-05 in the checkpoints, 0.0001 now" in capsys.readouterr().err


def test_the_qwen_layout_trains_and_scores_in_that_layout(trained, tmp_path: Path) -> None:
    _, hard = trained
    out = tmp_path / "qwen"
    assert main(["train", "prm", hard["export"], "--model", "smollm2-135m", "--output", str(out), "--layout", "qwen",
                 "--steps", "4", "--max-length", "256", "--held-out", "8", "--save-steps", "0"]) == 0
    prm = load_prm(out, device="cpu")
    assert prm.layout == "qwen-prm"  # a token-classification model read in the layout it was trained in
    ids, positions = prm.encode(*NEW_SOLUTION)
    marker = prm.tokenizer.convert_tokens_to_ids(QWEN_STEP_TOKEN)
    assert len(positions) == 3 and all(ids[p] == marker for p in positions)
    assert len(prm.score(*NEW_SOLUTION)) == 3


def test_eval_prm_on_the_simulated_fixture_next_to_annotate(trained, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, _ = trained
    assert main(["eval", "processbench", str(SHORT), str(LONG), "--prm", str(folder), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "ProcessBench with PRM" in out and "apsgen annotate" in out and "F1 per subset" in out
    assert main(["eval", "processbench", str(SHORT), "--prm", str(folder), "--device", "cpu", "--json",
                 "--threshold", "auto", "--limit", "8"]) == 0
    data = json.loads(capsys.readouterr().out)
    prm, annotate = data["prm"], data["annotate"]
    sub = prm["subsets"][0]
    assert sub["n_items"] == 8 and sub["n_skipped"] == 0 and 0.0 <= sub["f1"] <= 1.0
    assert prm["threshold_fitted_on"] == "processbench_sim_short" and 0.0 < prm["threshold"] <= 1.0
    assert annotate["subsets"][0]["n_items"] == 8


def test_eval_prm_reads_real_processbench_files_and_skips_what_does_not_fit(trained, shared_data, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, _ = trained
    files = [str(shared_data / "processbench" / f"{s}.json") for s in ("gsm8k", "math")]
    assert main(["eval", "processbench", *files, "--prm", str(folder), "--device", "cpu", "--limit", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["annotate"] is None  # no policy was given: the PRM alone
    assert [s["n_items"] + s["n_skipped"] for s in data["prm"]["subsets"]] == [4, 4]
    # A context too small for any item: every item counted as skipped with the reason, none scored.
    assert main(["eval", "processbench", files[0], "--prm", str(folder), "--device", "cpu", "--limit", "3",
                 "--max-length", "16", "--json"]) == 0
    sub = json.loads(capsys.readouterr().out)["prm"]["subsets"][0]
    assert sub["n_items"] == 0 and sub["n_skipped"] == 3 and sub["f1"] is None
    assert list(sub["skipped"]) == ["longer than the model's context (16 tokens)"]


def test_a_folder_that_is_not_a_prm_gets_a_clear_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    demo = _demo_model()
    assert main(["eval", "processbench", str(SHORT), "--prm", str(demo), "--prm-only"]) == 2
    assert "is not a PRM" in capsys.readouterr().err
    config = json.loads((demo / "config.json").read_text())
    three = tmp_path / "three"
    three.mkdir()
    (three / "config.json").write_text(json.dumps({**config, "architectures": ["LlamaForTokenClassification"],
                                                   "id2label": {"0": "a", "1": "b", "2": "c"}}))
    with pytest.raises(PRMError, match="has 3 labels"):
        layout_of(three)
    qwen = tmp_path / "qwen"
    qwen.mkdir()
    (qwen / "config.json").write_text(json.dumps({"architectures": ["Qwen2ForProcessRewardModel"]}))
    with pytest.raises(PRMError, match="--trust-remote-code"):
        layout_of(qwen)
    assert layout_of(qwen, trust_remote_code=True) == "qwen-prm"
    with pytest.raises(PRMError, match="no config.json"):
        layout_of(tmp_path)
    assert main(["eval", "processbench", str(SHORT), "--prm", str(demo), "--threshold", "1.5"]) == 2


def test_the_qwen_prm_layout_puts_one_score_on_each_step_marker(trained) -> None:
    """The Qwen2.5-Math-PRM input (chat template, steps joined and ended by <extra_0>), built with the
    trained PRM's tokenizer given that token, scored through the same interface."""
    import torch

    folder, _ = trained
    prm = load_prm(folder, device="cpu")
    prm.tokenizer.add_special_tokens({"additional_special_tokens": [QWEN_STEP_TOKEN]})
    prm.model.resize_token_embeddings(len(prm.tokenizer))
    qwen = PRM(model=prm.model, tokenizer=prm.tokenizer, layout="qwen-prm", separator=QWEN_STEP_TOKEN,
               max_length=prm.max_length, device="cpu", name="qwen-layout")
    question, steps = NEW_SOLUTION
    ids, positions = qwen.encode(question, steps + [f"a step that writes {QWEN_STEP_TOKEN} itself"])
    marker = prm.tokenizer.convert_tokens_to_ids(QWEN_STEP_TOKEN)
    assert len(positions) == 4 and all(ids[p] == marker for p in positions)
    with torch.inference_mode():
        scores = qwen.score(question, steps)
    assert len(scores) == 3 and all(0.0 < x < 1.0 for x in scores)


def test_soft_labels_and_missing_exports_are_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(name: str, **columns):  # type: ignore[no-untyped-def]
        pq.write_table(pa.table({"prompt": ["q"], "completions": [["a", "b"]], **columns}), tmp_path / name)
        return tmp_path / name

    with pytest.raises(PRMError, match="soft.parquet.*'labels' are (double|float64), not bool"):
        load_rows(write("soft.parquet", labels=[[0.8, 0.2]]))
    with pytest.raises(PRMError, match="hard.parquet.*no column soft_labels"):
        load_rows(write("hard.parquet", labels=[[True, False]]), labels="soft")
    with pytest.raises(PRMError, match="short.parquet row 0: 2 completions but 1 labels"):
        load_rows(write("short.parquet", labels=[[True]]))
    with pytest.raises(PRMError, match="odd.parquet row 0: soft_labels .* not probabilities"):
        load_rows(write("odd.parquet", labels=[[True, False]], soft_labels=[[1.5, 0.2]]), labels="soft")
    bad = tmp_path / "not-a-model"
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    one = write("one.parquet", labels=[[True, False]])
    with pytest.raises(PRMError, match="one.parquet: 1 row: at least 2 are needed"):
        train_prm(one, "x", tmp_path / "o1")
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"prompt": ["q"] * 6, "completions": [["a", "b"]] * 6, "labels": [[True, False]] * 6}), good)
    assert main(["train", "prm", str(good), "--model", str(bad), "--output", str(tmp_path / "o2")]) == 2
    assert "cannot load it with a token-classification head" in capsys.readouterr().err
    with pytest.raises(PRMError, match="no stepwise export"):
        load_rows(tmp_path / "nowhere")
    assert main(["train", "prm", str(tmp_path / "nowhere"), "--model", "x", "--output", str(tmp_path / "o")]) == 2
    assert main(["train", "prm", str(tmp_path), "--model", "x", "--output", str(tmp_path / "o"), "--steps", "0"]) == 2


# -- the threshold ---------------------------------------------------------------------------


def test_first_under_and_the_fitted_threshold_beats_every_grid_threshold() -> None:
    assert first_under([0.9, 0.4, 0.2], 0.5) == 1 and first_under([0.9, 0.8], 0.5) == -1
    rng = random.Random(7)
    scored = []
    for i in range(200):
        n = rng.randint(1, 8)
        label = rng.choice([-1] + list(range(n)))
        scores = [rng.random() for _ in range(n)]
        scored.append(Scored(Item(str(i), "q", tuple("s" * n), label, None), scores))

    def f1(t: float) -> float:
        return accuracies([Prediction(s.item, first_under(s.scores, t)) for s in scored])[2]

    best = fit_threshold(scored)
    assert all(f1(best) >= f1(t / 100) - 1e-12 for t in range(1, 101))
    # with nothing scored, ProcessBench's argmax threshold
    assert fit_threshold([]) == 0.5
