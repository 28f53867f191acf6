"""Stats of a known output, the CLI, and the HTML report rendered in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import zlib

import pytest
from known_output import make_output

from apsgen.cli.main import main
from apsgen.io.report import render_report
from apsgen.io.stats import compute_stats

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    return make_output(tmp_path_factory.mktemp("stats") / "out")


def test_counts_labels_histogram_and_outcomes(known):
    s = compute_stats(known)
    assert (s.problems_done, s.searched, s.skipped, s.failed) == (2, 1, {"all_correct": 1}, 0)
    assert (s.steps, s.unlabelled_steps, s.first_errors) == (7, 1, 1)
    # MC values 1, .75, 0, 0, .625, .5 (one state has none)
    assert (s.positive_mc0, s.negative_mc0, s.positive_mc05, s.negative_mc05) == (4, 2, 3, 3)
    assert s.mc_histogram == [2, 0, 0, 0, 0, 1, 1, 1, 0, 1]
    assert (s.mc_exact_zero, s.mc_exact_one) == (2, 1)
    # Paths of 3, 2 and (the correct solution, every state a step) 4 steps.
    assert (s.paths, s.correct_paths) == (3, 1) and s.steps_per_path.max == 4 and s.steps_per_path.mean == 3
    assert s.verifier_outcomes == {"correct": 40, "wrong": 24, "no_answer": 16, "truncated": 0, "timeout": 0}
    assert s.rollouts_per_problem.mean == 40 and s.generated_tokens == 800
    assert s.label_sources == {"correct_solution": 1, "rollouts": 5, "wrong_solution": 1}


def test_cli_text_and_json(known, capsys):
    assert main(["stats", known]) == 0
    text = capsys.readouterr().out
    assert "1 searched, 1 skipped (all_correct 1)" in text
    assert "excluded as contaminated" in text
    assert "no_answer 16" in text
    assert main(["stats", known, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mc_histogram"] == [2, 0, 0, 0, 0, 1, 1, 1, 0, 1]


def test_cli_error_names_the_folder(tmp_path, capsys):
    assert main(["stats", str(tmp_path / "missing")]) == 2
    assert "no apsgen output at" in capsys.readouterr().err


def test_report_is_self_contained(known):
    page = render_report(known)
    assert page.count('<svg class="plot"') == 7
    # No resource from elsewhere: the page must render offline.
    page = page.replace("http://www.w3.org/2000/svg", "")  # the SVG namespace names, never fetches
    for needle in ("http://", "https://", "src=", "@import", "url("):
        assert needle not in page
    assert "What is 4 + 5?" in page


def _chromium(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


def _png_size_and_ink(path) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the decoded pixels) of an 8-bit PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    idat, pos = b"", 8
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(known, tmp_path):
    from apsgen.io.report import write_report

    page = write_report(known, str(tmp_path / "report.html"))
    dom = _chromium(["--dump-dom", page.as_uri()], tmp_path).stdout
    assert dom.count('<svg class="plot"') == 7
    assert dom.count('class="bar"') > 10
    # The tree viewer is drawn by the page's script: its SVG exists only if the script ran.
    assert 'data-rendered="1"' in dom and 'id="tree-svg"' in dom
    assert dom.count('class="node') == 7 and dom.count("node first-error") == 1
    assert "FIRST ERROR" in dom  # the viewer opens on the first error's prefix

    shot = tmp_path / "shot.png"
    _chromium([f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()], tmp_path)
    width, height, ink = _png_size_and_ink(shot)
    assert (width, height) == (1200, 1600)
    assert ink > 20  # a blank page decodes to a handful of byte values
