"""The canonical Arrow schemas, read from `schemas/*.schema.json` so writer and docs cannot drift."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

# apsgen/schemas links to the repository's schemas/ folder, so the files ship as package data.
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

_TYPES = {
    "string": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "timestamp[ms, UTC]": pa.timestamp("ms", tz="UTC"),
}


def _load(name: str) -> pa.Schema:
    doc = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    fields = [
        pa.field(f["name"], _TYPES[f["type"]], nullable=f.get("nullable", False), metadata={"doc": f["doc"]})
        for f in doc["fields"]
    ]
    return pa.schema(fields, metadata={"schema": doc["name"], "version": str(doc["version"])})


@lru_cache(maxsize=None)
def step_schema() -> pa.Schema:
    return _load("steps")


@lru_cache(maxsize=None)
def problem_schema() -> pa.Schema:
    return _load("problems")


@lru_cache(maxsize=None)
def rollout_schema() -> pa.Schema:
    return _load("rollouts")


# Problem columns renamed since an earlier version: old name -> current name. Readers apply it, so
# outputs written by an earlier apsgen keep reading, compacting and pushing.
PROBLEM_RENAMES = {"verdicts": "outcomes"}  # version 4


def upgrade_problems(table: pa.Table) -> pa.Table:
    """A problem table of any version with the current column names."""
    names = table.column_names
    if not any(old in names for old in PROBLEM_RENAMES):
        return table
    return table.rename_columns([PROBLEM_RENAMES.get(n, n) if PROBLEM_RENAMES.get(n) not in names else n for n in names])


def old_problem_columns(columns: list[str], present: list[str]) -> list[str]:
    """The names to read `columns` by from a shard whose columns are `present`."""
    back = {new: old for old, new in PROBLEM_RENAMES.items()}
    return [back[c] if c not in present and back.get(c) in present else c for c in columns]
