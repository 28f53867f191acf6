"""What the pipeline benchmarks share: a simulated job's spec, and measuring with `--json`."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from typing import Any


def simulated_spec(name: str, problems: int, output: str, simulated: dict[str, Any], workers: int, trees: int,
                   **sections: dict[str, Any]):  # type: ignore[no-untyped-def]
    """A job on the simulated policy with `problems` questions, written to `output`, its workers
    and trees per worker given, and any other sections (`search={...}`, `label={...}`)."""
    from apsgen.config import parse_spec

    raw = {
        "name": name,
        "dataset": {"path": "simulated", "limit": problems},
        "policy": {"backend": "simulated", "model": "simulated", "simulated": simulated},
        **sections,
        "runner": {"num_workers": workers, "max_concurrent_trees": trees},
        "output": output,
    }
    return parse_spec(raw, name.replace("-", " "))


def measured(args: argparse.Namespace, measure: Callable[[argparse.Namespace], dict[str, Any]]) -> dict[str, Any] | None:
    """The benchmark's figures, quietly; printed as one JSON object (and None returned) with `--json`."""
    logging.getLogger("apsgen").setLevel(logging.WARNING)
    figures = measure(args)
    if args.json:
        print(json.dumps(figures, sort_keys=True))
        return None
    return figures
