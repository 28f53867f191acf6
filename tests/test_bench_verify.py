"""`apsgen bench verify` runs from the installed package: its tables ship with it, the real-solution
table and the stream take files, and without them it says what it needs. On real model solutions
(a slice of the shared table) apsgen is at least as accurate as math-verify, with no more false
positives, and never wrong where math-verify is right on the shipped tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

def _bench(tmp_path: Path, *args: str) -> dict:
    cmd = [sys.executable, "-m", "apsgen.cli.main", "bench", "verify", "--json", *args]
    # From another directory: nothing may come from the checkout's tests/ folder.
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True, cwd=tmp_path).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_bench_verify_scores_every_table_side_by_side(tmp_path: Path, shared_data: Path) -> None:
    real = tmp_path / "real.jsonl"
    rows = (shared_data / "real_solutions_dev.jsonl").read_text().splitlines()
    real.write_text("\n".join(rows[:60] + rows[-30:]) + "\n")  # GSM8K and MATH items
    golds = tmp_path / "golds.jsonl"
    golds.write_text("".join(json.dumps({"answer": a}) + "\n" for a in ["42", "\\frac{3}{4}", "(1,2)", "x^2+1"]))
    report = _bench(tmp_path, "--real", str(real), "--data", str(golds), "--checks-per-problem", "40",
                    "--math-verify-sample", "40")
    assert report["skipped"] == {}
    for table in ("cases", "families"):
        a, m = report[table]["apsgen"], report[table]["math_verify"]
        assert a["accuracy"] >= m["accuracy"] and a["false_positives"] <= m["false_positives"], table
    r = report["real"]
    assert r["solutions"] == 90
    assert r["apsgen"]["accuracy"] >= r["math_verify"]["accuracy"]
    assert r["apsgen"]["false_positives"] <= r["math_verify"]["false_positives"]
    assert set(r["apsgen"]["per_source"]) == {"gsm8k", "math"}
    stream = report["stream"]
    assert stream["checks"] == 160 and stream["apsgen"]["checks_per_s"] > 0
    assert stream["apsgen"]["accuracy"] >= 0.99


def test_bench_verify_says_what_it_needs(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "apsgen.cli.main", "bench", "verify", "--real", str(tmp_path / "missing.jsonl")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode != 0
    assert "--real" in result.stderr and "missing.jsonl" in result.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"gold": "3", "text": "\\boxed{3}", "correct": True}) + "\n")
    result = subprocess.run([*cmd[:-1], str(bad)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode != 0 and "no column 'solution'" in result.stderr and "text" in result.stderr
