"""The output folder: step shards, problem shards, the manifest, and resume.

Layout (a local path or any pyarrow filesystem URI, e.g. s3://bucket/run):

    data/part-00000.parquet      step rows (canonical schema)
    problems/part-00000.parquet  one row per finished problem; written last, it commits the
                                 step shard of the same number
    manifest.json                job, fingerprint, spec, failed problems, running totals

Every file is written under a temporary name and renamed. A step shard whose problem shard is
missing (a crash between the two renames) is removed on open, so a resumed run never holds a
problem twice and never loses one it reported finished.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from apsgen.io.schema import problem_schema, step_schema

log = logging.getLogger(__name__)

_PART = re.compile(r"part-(\d{5,})\.parquet$")


class FingerprintMismatch(RuntimeError):
    pass


def open_fs(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and path for a local folder or a URI (s3://, gs://, file://)."""
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), os.path.abspath(uri)


@dataclass
class Manifest:
    job: str
    fingerprint: str
    spec: dict[str, Any]
    apsgen_version: str
    created_at: str
    updated_at: str = ""
    total_problems: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # problem id -> last error
    totals: dict[str, float] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True, default=str)


class OutputStore:
    """One job's output folder; the only code that reads or writes it."""

    def __init__(self, uri: str):
        self.uri = uri
        self.fs, self.root = open_fs(uri)

    def path(self, *parts: str) -> str:
        """The filesystem path of a file or folder inside the output."""
        return "/".join([self.root.rstrip("/"), *parts])

    def read_bytes(self, rel: str) -> bytes | None:
        """A file's bytes, or None when it does not exist."""
        full = self.path(rel)
        if self.fs.get_file_info(full).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(full) as f:
            return f.read()

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write atomically: a temporary name, then a rename."""
        final = self.path(rel)
        tmp = final + f".tmp-{os.getpid()}"
        self.fs.create_dir(final.rsplit("/", 1)[0], recursive=True)
        with self.fs.open_output_stream(tmp) as f:
            f.write(data)
        self.fs.move(tmp, final)

    def shards(self, sub: str) -> dict[int, str]:
        """Part number -> path of the shards in `data` or `problems` (committed or not)."""
        sel = pafs.FileSelector(self.path(sub), allow_not_found=True)
        out = {}
        for info in self.fs.get_file_info(sel):
            m = _PART.search(info.path)
            if m and info.type == pafs.FileType.File:
                out[int(m.group(1))] = info.path
        return out

    def exists(self) -> bool:
        return self.fs.get_file_info(self.path("manifest.json")).type == pafs.FileType.File

    def read_manifest(self) -> Manifest | None:
        if not self.exists():
            return None
        with self.fs.open_input_stream(self.path("manifest.json")) as f:
            return Manifest(**json.loads(f.read().decode()))

    def write_manifest(self, manifest: Manifest) -> None:
        self.write_bytes("manifest.json", manifest.to_json().encode())

    def repair(self) -> int:
        """Remove step shards no problem shard commits, and leftover temporary files."""
        committed = self.shards("problems")
        removed = 0
        for num, path in self.shards("data").items():
            if num not in committed:
                log.warning("removing uncommitted shard %s (an earlier run stopped mid-write)", path)
                self.fs.delete_file(path)
                removed += 1
        for sub in ("data", "problems", ""):
            sel = pafs.FileSelector(self.path(sub) if sub else self.root, allow_not_found=True)
            for info in self.fs.get_file_info(sel):
                if ".tmp-" in info.path.rsplit("/", 1)[-1]:
                    self.fs.delete_file(info.path)
        return removed

    def next_part(self) -> int:
        nums = list(self.shards("problems")) + list(self.shards("data"))
        return max(nums) + 1 if nums else 0

    def read_problems(self) -> pa.Table:
        parts = [pq.read_table(p, filesystem=self.fs) for _, p in sorted(self.shards("problems").items())]
        return pa.concat_tables(parts) if parts else problem_schema().empty_table()

    def read_steps(self) -> pa.Table:
        parts = [pq.read_table(p, filesystem=self.fs) for _, p in sorted(self.shards("data").items())]
        return pa.concat_tables(parts) if parts else step_schema().empty_table()

    def done_ids(self) -> set[str]:
        return set(self.read_problems().column("problem_id").to_pylist())

    def write_part(self, num: int, steps: list[dict[str, Any]], problems: list[dict[str, Any]]) -> None:
        """Write one shard pair; the problem shard goes last and commits the pair."""
        name = f"part-{num:05d}.parquet"
        step_table = pa.Table.from_pylist(steps, schema=step_schema())
        self._write_table(f"data/{name}", step_table)
        self._write_table(f"problems/{name}", pa.Table.from_pylist(problems, schema=problem_schema()))

    def _write_table(self, rel: str, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        self.write_bytes(rel, sink.getvalue().to_pybytes())

    def open_for_job(self, manifest: Manifest) -> Manifest:
        """Start or resume: the same fingerprint resumes, a different one is refused."""
        old = self.read_manifest()
        if old is None:
            self.write_manifest(manifest)
            return manifest
        if old.fingerprint != manifest.fingerprint:
            raise FingerprintMismatch(
                f"{self.uri} holds output of job {old.job!r} with settings fingerprint {old.fingerprint}, "
                f"but this run's settings have fingerprint {manifest.fingerprint}; mixing them would give a "
                f"dataset with two meanings. Use another --output, or pass --new-version to write to a "
                f"versioned folder beside it."
            )
        self.repair()
        return old
