"""The output folder: step shards, problem shards, the manifest, and resume.

Layout (a local path or any pyarrow filesystem URI, e.g. s3://bucket/run):

    data/part-00000.parquet      step rows (canonical schema)
    rollouts/part-00000.parquet  every completion sampled for those problems, when the job keeps
                                 them (`runner.keep_rollouts`)
    problems/part-00000.parquet  one row per finished problem; written last, it commits the
                                 step (and rollout) shard of the same name
    data/part-00000-00041.parquet, problems/part-00000-00041.parquet
                                 a compacted pair: parts 0 to 41 merged (`apsgen compact`)
    manifest.json                job, fingerprint, spec, failed problems, running totals

Every file is written under a temporary name and renamed. A step or rollout shard whose problem
shard is missing (a crash between the renames) is removed on open, so a resumed run never holds a
problem twice and never loses one it reported finished. A committed compacted pair supersedes
the parts its range covers: readers skip them and `repair` deletes them, so a compaction stopped
at any point leaves every row readable exactly once.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from apsgen.io.schema import old_problem_columns, problem_schema, rollout_schema, step_schema, upgrade_problems

log = logging.getLogger(__name__)

_PART = re.compile(r"part-(\d{5,})(?:-(\d{5,}))?\.parquet$")


def _covered(first: int, last: int, live: dict[int, int]) -> bool:
    """Whether parts first..last lie inside one of the (disjoint) live ranges."""
    starts = sorted(live)
    i = bisect.bisect_right(starts, first) - 1
    return i >= 0 and live[starts[i]] >= last


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
    # The calibration the labels are judged against (its summary; the whole of it is calibration.json).
    calibration: dict[str, Any] | None = None
    # Written by apsgen 0.x before calibration (the first questions' recovery prior); read, never written.
    job_prior: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True, default=str)


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows as a table, built column by column (3x less CPU than from_pylist on step rows, which
    the driver pays for every shard: `apsgen bench scale`); a key a row lacks is null, as there."""
    return pa.Table.from_pydict({name: [r.get(name) for r in rows] for name in schema.names}, schema=schema)


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
        """First part number -> path of the readable shards in `data`, `problems` or `rollouts`
        (committed or not), leaving out those a committed compacted pair supersedes."""
        live = self._live_ranges()
        return {first: path for (first, last), path in self._ranged(sub).items()
                if live.get(first) == last or (first not in live and not _covered(first, last, live))}

    def _ranged(self, sub: str) -> dict[tuple[int, int], str]:
        """(first, last) part number -> path of every shard file in `data`, `problems` or `rollouts`."""
        sel = pafs.FileSelector(self.path(sub), allow_not_found=True)
        out = {}
        for info in self.fs.get_file_info(sel):
            m = _PART.search(info.path.rsplit("/", 1)[-1])
            if m and info.type == pafs.FileType.File:
                first = int(m.group(1))
                out[(first, int(m.group(2) or first))] = info.path
        return out

    def _live_ranges(self) -> dict[int, int]:
        """First -> last part of the committed pairs that no wider committed pair covers."""
        committed = sorted(set(self._ranged("problems")) & set(self._ranged("data")), key=lambda r: (r[0], -r[1]))
        live: dict[int, int] = {}
        reach = -1
        for first, last in committed:
            if last > reach:
                live[first] = last
                reach = last
        return live

    def superseded(self) -> list[str]:
        """Paths of shards (any folder) inside a committed compacted pair's range."""
        live = self._live_ranges()
        return [path for sub in ("data", "problems", "rollouts") for (first, last), path in self._ranged(sub).items()
                if live.get(first) != last and _covered(first, last, live)]

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
        """Remove step and rollout shards no problem shard commits, shards a compaction superseded,
        and leftover temporary files."""
        merged = self.superseded()
        for path in merged:
            log.debug("removing %s (merged into a compacted shard)", path)
            self.fs.delete_file(path)
        if merged:
            log.info("removed %d shards merged into compacted shards", len(merged))
        committed = set(self._ranged("problems"))
        removed = 0
        for sub in ("data", "rollouts"):
            for num, path in self._ranged(sub).items():
                if num not in committed:
                    log.warning("removing uncommitted shard %s (an earlier run stopped mid-write)", path)
                    self.fs.delete_file(path)
                    removed += sub == "data"
        for sub in ("data", "problems", "rollouts", ""):
            sel = pafs.FileSelector(self.path(sub) if sub else self.root, allow_not_found=True)
            for info in self.fs.get_file_info(sel):
                if ".tmp-" in info.path.rsplit("/", 1)[-1]:
                    self.fs.delete_file(info.path)
        return removed

    def next_part(self) -> int:
        lasts = [last for sub in ("problems", "data", "rollouts") for (_, last) in self._ranged(sub)]
        return max(lasts) + 1 if lasts else 0

    def committed_pairs(self) -> list[tuple[str, str, str]]:
        """(name, step shard path, problem shard path) of every readable committed pair, in order."""
        data, problems = self.shards("data"), self.shards("problems")
        return [(problems[n].rsplit("/", 1)[-1], data[n], problems[n])
                for n in sorted(problems) if n in data]

    def read_problems(self) -> pa.Table:
        parts = [upgrade_problems(pq.read_table(p, filesystem=self.fs)) for _, _, p in self.committed_pairs()]
        return pa.concat_tables(parts) if parts else problem_schema().empty_table()

    def read_problem_columns(self, columns: list[str]) -> pa.Table:
        """Some columns of every committed problem row (a run's totals need no question text)."""
        parts = []
        for _, _, p in self.committed_pairs():
            present = pq.read_schema(p, filesystem=self.fs).names
            table = pq.read_table(p, columns=old_problem_columns(columns, present), filesystem=self.fs)
            parts.append(upgrade_problems(table))
        return pa.concat_tables(parts) if parts else problem_schema().empty_table().select(columns)

    def read_steps(self) -> pa.Table:
        parts = [pq.read_table(p, filesystem=self.fs) for _, p, _ in self.committed_pairs()]
        # Shards of an earlier version lack the newer columns: null there.
        return pa.concat_tables(parts, promote_options="default") if parts else step_schema().empty_table()

    def rollout_shards(self) -> list[str]:
        """Paths of the rollout shards of every readable committed pair, in order (none where the
        job did not keep its rollouts)."""
        rollouts = self.shards("rollouts")
        pairs = {int(_PART.search(name).group(1)) for name, _, _ in self.committed_pairs()}  # type: ignore[union-attr]
        return [rollouts[n] for n in sorted(rollouts) if n in pairs]

    def read_rollouts(self, columns: list[str] | None = None) -> pa.Table:
        """The kept rollouts of every committed problem (empty where none were kept)."""
        parts = [pq.read_table(p, columns=columns, filesystem=self.fs) for p in self.rollout_shards()]
        if parts:
            return pa.concat_tables(parts, promote_options="default")
        empty = rollout_schema().empty_table()
        return empty.select(columns) if columns else empty

    def done_ids(self) -> set[str]:
        """Ids of every committed problem: the id column alone is read from each shard."""
        done: set[str] = set()
        for _, _, path in self.committed_pairs():
            done.update(pq.read_table(path, columns=["problem_id"], filesystem=self.fs).column(0).to_pylist())
        return done

    def write_part(self, num: int, steps: list[dict[str, Any]], problems: list[dict[str, Any]],
                   rollouts: list[dict[str, Any]] | None = None) -> None:
        """Write one shard pair (and the problems' rollouts, when kept); the problem shard goes last
        and commits them."""
        name = f"part-{num:05d}.parquet"
        self._write_table(f"data/{name}", _table(steps, step_schema()))
        if rollouts is not None:
            self._write_table(f"rollouts/{name}", _table(rollouts, rollout_schema()))
        self._write_table(f"problems/{name}", _table(problems, problem_schema()))

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
