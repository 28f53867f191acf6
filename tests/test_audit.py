"""`apsgen audit`: the sample, the one-key loop over a pipe, resuming, import/export, the report,
and an auditor who answers from the simulated world's planted truth reproducing the bench's precision."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest

from apsgen.audit.record import AuditLog, read_import, write_export
from apsgen.audit.report import build_report, wilson
from apsgen.audit.sample import ALL_CORRECT, FIRST_ERROR, AuditError, AuditItem, draw_sample
from apsgen.audit.session import run_session
from apsgen.cli.main import main
from apsgen.config import parse_spec
from apsgen.io.store import OutputStore
from apsgen.worlds.chain import first_error_offset

JOB = {
    "name": "audit-check", "seed": 3, "dataset": {"path": "simulated", "limit": 16},
    "policy": {"backend": "simulated", "model": "simulated",
               "simulated": {"min_steps": 3, "max_steps": 8, "success_rate": [0.4, 0.9], "recover_rate": 0.1}},
    # Step checks off: every simulated wrong step is a false equation they would catch, and the
    # truth auditor must meet both kinds of mislabel.
    "search": {"k": 4, "screen_samples": 8, "max_searches": 6},
    "steps": {"checks": False},
    "runner": {"shard_rows": 60},  # several shards: the sample must not depend on how rows are split
}


def _run(out: str, **dataset) -> None:
    from apsgen.runner.driver import run_job

    spec = parse_spec({**JOB, "dataset": {**JOB["dataset"], **dataset}})
    run_job(spec, output=out, show_progress=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("audit") / "out")
    _run(out)
    return out


@pytest.fixture
def output(built, tmp_path) -> str:
    """A fresh copy per test, so one test's verdicts never leak into another's."""
    dest = str(tmp_path / "out")
    shutil.copytree(built, dest)
    return dest


def _rows(output: str) -> dict[tuple[str, int], dict]:
    return {(r["tree_id"], r["node_id"]): r for r in OutputStore(output).read_steps().to_pylist()}


def truth_answer(item: AuditItem, rows: dict[tuple[str, int], dict]) -> str:
    """What an auditor who knows the planted errors types: r, 'e N' or f."""
    world = parse_spec(JOB).policy.simulated
    last = rows[(item.tree_id, item.steps[-1].node_id)]
    off = first_error_offset(item.question, last["prefix"] + last["step_text"], world)
    ends = [rows[(item.tree_id, s.node_id)]["char_end"] for s in item.steps]
    if off is None:
        return "r" if item.kind == ALL_CORRECT else "f"
    step = next(i for i, end in enumerate(ends) if off < end)  # the shown step holding the first wrong result
    if item.kind == FIRST_ERROR and step == len(ends) - 1:
        return "r"
    return f"e {step + 1}"


def _pipe(answers: list[str]) -> io.StringIO:
    return io.StringIO("".join(a + "\n" for a in answers))


def test_truth_auditor_reproduces_the_bench_precision(output):
    sample = draw_sample(output, size=10_000, seed=1)
    rows = _rows(output)
    answers = [truth_answer(item, rows) for item in sample.items]
    result = run_session(sample, AuditLog(output), "truth", stream=_pipe(answers), out=io.StringIO())
    assert result.answered == len(sample.items) and not result.quit

    # The bench's count over the same paths: a located first error is right when the planted first
    # wrong result lies inside its step (apsgen/bench/search.py, score).
    world = parse_spec(JOB).policy.simulated
    located = right = 0
    for r in rows.values():
        if r["is_first_error"]:
            off = first_error_offset(r["question"], r["prefix"] + r["step_text"], world)
            located += 1
            right += off is not None and r["char_start"] <= off < r["char_end"]
    report = build_report(output)
    assert report is not None and report.current
    assert located > 10 and report.first_errors.read == located
    assert report.first_errors.right == right
    assert report.too_late + report.too_early == located - right
    assert report.all_correct.read == sample.population[ALL_CORRECT]
    lo, hi = report.first_errors.interval
    assert lo <= report.first_errors.precision <= hi


def test_sample_is_seeded_stratified_and_nested(output):
    a = draw_sample(output, size=20, seed=5)
    b = draw_sample(output, size=20, seed=5)
    assert [i.path_id for i in a.items] == [i.path_id for i in b.items]
    assert len(a.items) == 20
    kinds = [i.kind for i in a.items]
    assert kinds.count(ALL_CORRECT) == 4 and kinds.count(FIRST_ERROR) == 16  # default share 0.2
    bigger = draw_sample(output, size=30, seed=5)
    assert {i.path_id for i in a.items} <= {i.path_id for i in bigger.items}
    other = draw_sample(output, size=20, seed=6)
    assert {i.path_id for i in other.items} != {i.path_id for i in a.items}
    # Every first-error item ends at its `-` step and shows the steps the exports train on before it.
    for item in a.items:
        labels = [s.label for s in item.steps]
        if item.kind == FIRST_ERROR:
            assert labels[-1] == "-" and set(labels[:-1]) <= {"+"}
        else:
            assert set(labels) == {"+"} and not item.after


def test_quit_keeps_answers_and_a_second_session_continues(output):
    log = AuditLog(output)
    sample = draw_sample(output, size=6, seed=0)
    shown = io.StringIO()
    first = run_session(sample, log, "ann", stream=_pipe(["r", "nonsense", "s", "q"]), out=shown)
    assert first.quit and first.answered == 2 and first.remaining == 4
    assert "is not an answer" in shown.getvalue()
    recorded = log.read("ann")
    assert [v.path_id for v in recorded] == [i.path_id for i in sample.items[:2]]
    assert recorded[0].shown["question"] == sample.items[0].question and recorded[0].output_digest == sample.digest

    second = run_session(sample, log, "ann", stream=_pipe(["s"] * 10), out=io.StringIO())
    assert second.answered == 4 and not second.quit
    ids = [v.path_id for v in log.read("ann")]
    assert sorted(ids) == sorted(i.path_id for i in sample.items) and len(ids) == len(set(ids))
    # End of input is a quit, never a guessed answer.
    assert run_session(draw_sample(output, size=8, seed=0), log, "ann", stream=_pipe([]), out=io.StringIO()).quit
    assert len(log.read("ann")) == 6


def test_earlier_step_is_asked_for_and_range_checked(output):
    sample = draw_sample(output, size=40, seed=2)
    item = next(i for i in sample.items if i.kind == FIRST_ERROR and len(i.steps) >= 3)
    one = type(sample)(sample.digest, sample.seed, [item], sample.population, sample.candidates)
    out = io.StringIO()
    n = len(item.steps)
    run_session(one, AuditLog(output), "ann", stream=_pipe([f"e {n}", "e", "x", "e", "2"]), out=out)
    text = out.getvalue()
    assert f"step {n} is out of range" in text and "'x' is not a step number" in text
    (v,) = AuditLog(output).read("ann")
    assert v.answer == "earlier" and v.wrong_step == 1


def test_export_import_round_trip_and_bad_files_lose_nothing(output, tmp_path):
    sample = draw_sample(output, size=8, seed=0)
    log = AuditLog(output)
    run_session(sample, log, "ann", stream=_pipe(["r"]), out=io.StringIO())
    path = str(tmp_path / "sample.csv")
    assert write_export(path, sample, {v.path_id: v for v in log.read("ann")}) == 8
    with open(path, newline="", encoding="utf-8") as f:
        records = list(csv.DictReader(f))
    assert records[0]["answer"] == "right" and records[0]["path_id"] == sample.items[0].path_id
    for rec in records[1:4]:
        rec["answer"] = "right"
    fe = next(r for r in records[4:] if r["kind"] == FIRST_ERROR and int(r["labelled_step"]) >= 2)
    fe["answer"], fe["wrong_step"] = "earlier", "1"

    def write(recs, name):
        p = tmp_path / name
        with open(p, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(recs[0]))
            w.writeheader()
            w.writerows(recs)
        return str(p)

    good = write(records, "filled.csv")
    verdicts, unanswered = read_import(good, sample, "bob")
    assert len(verdicts) == 5 and unanswered == 8 - 5
    log.append(verdicts)
    assert len(log.read("bob")) == 5

    bad_id = [dict(r) for r in records]
    bad_id[2]["path_id"] = "nope/1"
    bad_answer = [dict(r) for r in records]
    bad_answer[3]["answer"] = "maybe"
    bad_step = [dict(r) for r in records]
    bad_step[records.index(fe)]["wrong_step"] = "99"
    for recs, message in ((bad_id, r"row 4 \(line \d+\): path id 'nope/1' is not a labelled path"),
                          (bad_answer, r"row 5 \(line \d+\): unknown answer 'maybe'"),
                          (bad_step, "step 99 is out of range")):
        with pytest.raises(AuditError, match=message):
            read_import(write(recs, "bad.csv"), sample, "bob")
        assert len(log.read("bob")) == 5  # nothing recorded was lost or added
    # Through the CLI the error is one line naming the file and line, exit code 2.
    assert main(["audit", output, "--auditor", "bob", "--sample", "8", "--import", write(bad_id, "bad.csv")]) == 2


def test_jsonl_export_and_import(output, tmp_path):
    sample = draw_sample(output, size=5, seed=0)
    path = str(tmp_path / "s.jsonl")
    write_export(path, sample, {})
    recs = [json.loads(line) for line in open(path, encoding="utf-8")]
    for r in recs:
        r["answer"] = "skip"
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in recs)
    verdicts, unanswered = read_import(path, sample, "cat")
    assert len(verdicts) == 5 and unanswered == 0 and {v.answer for v in verdicts} == {"skip"}


def test_two_auditors_agreement_and_report(output, capsys):
    sample = draw_sample(output, size=10, seed=0)
    rows = _rows(output)
    truth = [truth_answer(i, rows) for i in sample.items]
    run_session(sample, AuditLog(output), "ann", stream=_pipe(truth), out=io.StringIO())
    run_session(sample, AuditLog(output), "bob", stream=_pipe(truth[:-1] + ["s"]), out=io.StringIO())
    report = build_report(output)
    (pair,) = report.pairs
    assert pair.auditors == ("ann", "bob") and pair.both == 9 and pair.agree == 9
    assert report.auditors == {"ann": 10, "bob": 10} and report.skipped == 1
    assert main(["audit", output, "--report"]) == 0
    text = capsys.readouterr().out
    assert "95% Wilson" in text and "ann and bob both answered 9 paths" in text
    assert main(["audit", output, "--report", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["first_errors"]["read"] > 0


def test_changed_output_is_told_apart(output, capsys):
    sample = draw_sample(output, size=4, seed=0)
    run_session(sample, AuditLog(output), "ann", stream=_pipe(["s"] * 4), out=io.StringIO())
    assert main(["compact", output]) == 0  # rewriting shards changes no label: same state
    assert draw_sample(output, size=4, seed=0).digest == sample.digest
    _run(output, limit=18)  # a later build adds problems: another state
    later = draw_sample(output, size=4, seed=0)
    assert later.digest != sample.digest
    report = build_report(output)
    assert not report.current and report.digest == sample.digest
    run_session(later, AuditLog(output), "ann", stream=_pipe(["s"] * 4), out=io.StringIO())
    report = build_report(output)
    assert report.current and report.other_states == {sample.digest: 4} and report.skipped == 4
    assert "not counted" in report.render()


def test_unaudited_and_audited_outputs_say_so(output, tmp_path, capsys):
    assert main(["audit", output, "--report"]) == 2
    assert "has not been audited yet" in capsys.readouterr().err
    assert main(["stats", output]) == 0
    assert "not audited" in capsys.readouterr().out
    from apsgen.hub.folder import build_hub_folder

    card = (build_hub_folder(output, tmp_path / "hub1", formats=[]).path / "README.md").read_text()
    assert "| human audit | not audited" in card
    sample = draw_sample(output, size=6, seed=0)
    run_session(sample, AuditLog(output), "ann", stream=_pipe(["r"] * 6), out=io.StringIO())
    assert main(["stats", output]) == 0
    assert "audit         first-error precision" in capsys.readouterr().out
    folder = build_hub_folder(output, tmp_path / "hub2", formats=[])
    card = (folder.path / "README.md").read_text()
    assert "| human audit | " in card and "read by hand by ann on " in card
    assert "audit/ann.jsonl" in folder.files


def test_a_cut_off_last_line_is_ignored_and_the_rest_kept(output):
    sample = draw_sample(output, size=3, seed=0)
    log = AuditLog(output)
    run_session(sample, log, "ann", stream=_pipe(["s", "s"]), out=io.StringIO())
    path = OutputStore(output).path("audit/ann.jsonl")
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"path_id": "x", "kin')
    assert len(log.read("ann")) == 2
    with pytest.raises(AuditError, match="must be letters"):
        AuditLog(output).read("../etc")


def test_wilson_interval():
    lo, hi = wilson(8, 10)
    assert round(lo, 3) == 0.490 and round(hi, 3) == 0.943
    assert wilson(0, 0) == (0.0, 1.0)
    lo, hi = wilson(10, 10)
    assert hi == 1.0 and 0.69 < lo < 0.73
