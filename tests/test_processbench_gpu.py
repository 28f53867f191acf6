"""The real ProcessBench figure: a 7B policy labelling ProcessBench's own files on a GPU.

Not run here (no GPU engine, no model weights). On a GPU machine with the files downloaded
(`huggingface-cli download Qwen/ProcessBench --repo-type dataset --local-dir pb`; the JSON files
per subset are under pb/, e.g. gsm8k.json) and a policy available:

    PROCESSBENCH_DIR=pb APSGEN_PB_MODEL=Qwen/Qwen2.5-Math-7B-Instruct pytest -m gpu tests/test_processbench_gpu.py

which runs what `apsgen eval processbench pb/gsm8k.json pb/math.json pb/olympiadbench.json
pb/omnimath.json --set policy.model=...` prints.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")


def test_processbench_with_a_real_policy() -> None:
    folder = os.environ.get("PROCESSBENCH_DIR")
    if not folder:
        pytest.skip("set PROCESSBENCH_DIR to the downloaded ProcessBench files")
    files = [str(Path(folder) / f"{s}.json") for s in SUBSETS if (Path(folder) / f"{s}.json").is_file()]
    assert files, f"no ProcessBench subset files ({', '.join(SUBSETS)}.json) in {folder}"
    from apsgen.config import parse_spec
    from apsgen.eval.processbench import evaluate

    spec = parse_spec({
        "name": "processbench",
        "dataset": {"path": "processbench", "steps_column": "steps"},
        "policy": {"backend": "vllm", "model": os.environ.get("APSGEN_PB_MODEL", "Qwen/Qwen2.5-Math-7B-Instruct"),
                   "engine": {"max_model_len": 8192}},
        "sampling": {"max_tokens": 2048},
        "search": {"mode": "annotate"},
    })
    report = evaluate(files, spec, concurrency=64)
    print(report.render())
    assert all(s.n_items > 0 for s in report.subsets)
    # MC labels alone: ProcessBench reports 26-40 average F1 for PRMs trained on them; the
    # labels themselves should land in that range or above.
    assert report.mean_f1 > 0.2
