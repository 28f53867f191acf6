"""`apsgen bench checks`: the text checks against human first-error labels, and bad files refused."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apsgen.bench.checks import measure, wilson


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "apsgen.cli.main", "bench", "checks", *args],
                          capture_output=True, text=True, timeout=300)


def test_certain_claims_are_precise_on_processbench(shared_data: Path) -> None:
    """What the search takes as certain is right where humans read real model text: at least 0.95
    precision on each subset, and at least the 59 right claims the checks made before they were
    measured here (GSM8K 16, MATH 43)."""
    files = [str(shared_data / "processbench" / f) for f in ("gsm8k.json", "math.json")]
    measured = measure(files)
    certain = measured["certain wrong"]
    for subset in ("gsm8k", "math"):
        t = certain[subset]
        assert t.claims and t.right / t.claims >= 0.95, (subset, t.right, t.claims)
    assert certain["all"].right >= 59
    # a restatement never hides a human first error there
    assert not measured["restatement"]["all"].false


def test_the_command_prints_every_check_and_lists_false_claims(shared_data: Path, tmp_path: Path) -> None:
    f = shared_data / "processbench" / "gsm8k.json"
    items = json.loads(f.read_text())[:60]
    small = tmp_path / "small.json"
    small.write_text(json.dumps(items))
    out = _run(str(small), "--show-false", "3")
    assert out.returncode == 0, out.stderr
    for check in ("certain wrong", "false equation", "retraction", "restatement"):
        assert check in out.stdout
    data = json.loads(_run(str(small), "--json").stdout)
    assert set(data["false equation"]) == {"small", "all"}
    assert data["false equation"]["all"]["claims"] == data["false equation"]["small"]["claims"]


@pytest.mark.parametrize(("change", "field"), [
    (lambda it: it.pop("steps"), "'steps'"),
    (lambda it: it.update(label=99), "'label' 99"),
    (lambda it: it.update(steps=["fine", 7]), "step 1"),
    (lambda it: it.update(problem=None), "'problem'"),
])
def test_a_bad_item_is_refused_with_file_item_and_field(tmp_path: Path, change, field: str) -> None:  # type: ignore[no-untyped-def]
    items = [{"id": f"t-{i}", "problem": "1 + 1?", "steps": ["1 + 1 = 2.", "\\boxed{2}"], "label": -1} for i in range(3)]
    change(items[1])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(items))
    out = _run(str(path))
    assert out.returncode != 0
    assert "bad.json" in out.stderr and "t-1" in out.stderr and field in out.stderr


def test_megabytes_of_garbage_in_a_step_are_read_in_linear_time(tmp_path: Path) -> None:
    # the reader takes solutions up to 100,000 characters; a check reads a step up to MAX_CHARS
    junk = ("\\[ 1 + 1 = \\frac{" * 5_000 + "$" * 20_000)[:95_000]
    items = [{"id": f"g-{i}", "problem": "1 + 1?", "steps": [s, "2"], "label": 0}
             for i, s in enumerate([junk, junk[:19_999], junk[-19_999:]] * 6)]
    path = tmp_path / "junk.json"
    path.write_text(json.dumps(items))
    t0 = time.perf_counter()
    measure([str(path)])
    assert time.perf_counter() - t0 < 20


def test_wilson_interval_brackets_the_proportion() -> None:
    lo, hi = wilson(97, 100)  # type: ignore[misc]
    assert lo < 0.97 < hi <= 1.0
    assert wilson(0, 0) is None
