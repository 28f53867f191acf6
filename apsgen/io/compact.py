"""Few large Parquet files from a stream of tables: the writer behind Hub folders, exports and
`apsgen compact`.

Where files and row groups end depends only on the sequence of rows, never on how the rows
arrived (one source shard or a hundred), so the same rows always give byte-identical files and a
nightly build that only appended rows changes only its last file. The stream is cut into blocks of
`BLOCK_ROWS` rows (counted from the first row); a row group closes at the first block boundary
where it holds `ROW_GROUP_BYTES` of data, a file at the first row-group boundary where it holds
`FILE_BYTES`. Data size is the text bytes plus 8 bytes per scalar, a measure that does not depend
on Arrow's chunking. A file is never empty: a stream with no rows writes no file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from apsgen.io.schema import problem_schema, rollout_schema, step_schema, upgrade_problems
from apsgen.io.store import OutputStore

# Targets in uncompressed data bytes. Zstandard shrinks apsgen rows 5-20x, so a file is tens of
# MB on disk: large enough that a 10,000-problem run is a few files, small enough for the Hub's
# viewer. A 32 MB row group is what a streaming reader (`datasets` streaming, the viewer, DuckDB)
# holds in memory at a time.
FILE_BYTES = 512 * 2**20
ROW_GROUP_BYTES = 32 * 2**20
BLOCK_ROWS = 512
DATA_BYTES_KEY = "apsgen_data_bytes"
_PART_NUMS = re.compile(r"part-(\d{5,})(?:-(\d{5,}))?\.parquet$")


def data_bytes(table: pa.Table | pa.ChunkedArray | pa.Array) -> int:
    """Text bytes plus 8 bytes per scalar value: a size that is the same however the data is chunked."""
    if isinstance(table, pa.Table):
        return sum(data_bytes(col) for col in table.columns)
    typ = table.type
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        arr = table.combine_chunks() if isinstance(table, pa.ChunkedArray) else table
        return 8 * len(arr) + data_bytes(pc.list_flatten(arr))
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_binary(typ):
        total = pc.sum(pc.binary_length(table)).as_py() or 0
        return 8 * len(table) + total
    return 8 * len(table)


@dataclass
class CompactWriter:
    """Writes `folder/part-00000.parquet`, `part-00001.parquet`, ... from appended tables.

    Each file is written under a temporary name and renamed when it is complete. `close()` flushes
    the last file and returns the relative names written. `jsonl` also writes each file's rows as
    JSON Lines beside it; `single` names the one file everything goes to (no size limit).
    """

    fs: pafs.FileSystem
    folder: str
    schema: pa.Schema
    jsonl: bool = False
    file_bytes: int = FILE_BYTES
    row_group_bytes: int = ROW_GROUP_BYTES
    block_rows: int = BLOCK_ROWS
    single: str | None = None
    files: list[str] = field(default_factory=list)
    rows: int = 0
    _pending: list[pa.Table] = field(default_factory=list)  # rows not yet in a whole block
    _pending_rows: int = 0
    _group: list[pa.Table] = field(default_factory=list)  # whole blocks of the open row group
    _group_bytes: int = 0
    _writer: pq.ParquetWriter | None = None
    _file_bytes: int = 0
    _total_bytes: int = 0  # of the open file, recorded in its metadata

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        table = table.cast(self.schema) if table.schema != self.schema else table
        self.rows += table.num_rows
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows < self.block_rows:
            return
        pending = pa.concat_tables(self._pending)
        whole = (pending.num_rows // self.block_rows) * self.block_rows
        for start in range(0, whole, self.block_rows):
            self._add_block(pending.slice(start, self.block_rows))
        rest = pending.slice(whole)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def write_all(self, tables: Iterable[pa.Table]) -> None:
        for t in tables:
            self.write(t)

    def _add_block(self, block: pa.Table) -> None:
        self._group.append(block)
        self._group_bytes += data_bytes(block)
        if self._group_bytes >= self.row_group_bytes:
            self._flush_group()

    def _flush_group(self) -> None:
        if not self._group:
            return
        group = pa.concat_tables(self._group).combine_chunks()
        if self._writer is None:
            self._writer = pq.ParquetWriter(
                self.fs.open_output_stream(self._tmp_path()), self.schema, compression="zstd",
                write_statistics=True,
            )
        self._writer.write_table(group, row_group_size=group.num_rows)
        self._file_bytes += self._group_bytes
        self._total_bytes += self._group_bytes
        self._group, self._group_bytes = [], 0
        if self._file_bytes >= self.file_bytes and self.single is None:
            self._finish_file()

    def _name(self) -> str:
        return self.single or f"part-{len(self.files):05d}.parquet"

    def _tmp_path(self) -> str:
        # `.tmp-` marks leftovers that OutputStore.repair removes after a crash.
        return f"{self.folder}/{self._name()}.tmp-write"

    def _finish_file(self) -> None:
        assert self._writer is not None
        # Compaction sizes shards by this figure; Parquet's own sizes shrink as files merge.
        self._writer.add_key_value_metadata({DATA_BYTES_KEY: str(self._total_bytes)})
        self._writer.close()
        self._writer, self._file_bytes, self._total_bytes = None, 0, 0
        name = self._name()
        final = f"{self.folder}/{name}"
        self.fs.move(self._tmp_path(), final)
        self.files.append(name)
        if self.jsonl:
            self._write_jsonl(final)

    def _write_jsonl(self, parquet_path: str) -> None:
        path = parquet_path[: -len(".parquet")] + ".jsonl"
        with self.fs.open_output_stream(path + ".tmp-write") as out:
            for batch in pq.ParquetFile(self.fs.open_input_file(parquet_path)).iter_batches():
                for row in batch.to_pylist():
                    out.write((json.dumps(row, ensure_ascii=False, default=str) + "\n").encode())
        self.fs.move(path + ".tmp-write", path)

    def close(self) -> list[str]:
        """Flush what is buffered; the relative names of the files written."""
        if self._pending:
            self._group.append(pa.concat_tables(self._pending))
            self._group_bytes += data_bytes(self._group[-1])
            self._pending, self._pending_rows = [], 0
        self._flush_group()
        if self._writer is None and self.single is not None and not self.files:
            # A named shard is part of a pair and must exist even without rows (0 row groups).
            self._writer = pq.ParquetWriter(self.fs.open_output_stream(self._tmp_path()), self.schema)
        if self._writer is not None:
            self._finish_file()
        return list(self.files)


def compact_tables(
    fs: pafs.FileSystem, folder: str, schema: pa.Schema, tables: Iterable[pa.Table], *, jsonl: bool = False
) -> CompactWriter:
    """Write `tables` into `folder` as few large files; the finished writer (files, rows)."""
    fs.create_dir(folder, recursive=True)
    writer = CompactWriter(fs, folder, schema, jsonl=jsonl)
    writer.write_all(tables)
    writer.close()
    return writer


@dataclass
class CompactionReport:
    uri: str
    files_before: int  # step shards
    files_after: int
    rows: int  # step rows, the same before and after
    problems: int

    def render(self) -> str:
        return (f"compacted {self.uri}: {self.files_before} -> {self.files_after} step shards "
                f"({self.rows} step rows, {self.problems} problems)")


def _shard_bytes(store: OutputStore, path: str) -> int:
    """A step shard's data size: recorded by the writer of a merged shard, measured otherwise."""
    meta = pq.read_metadata(store.fs.open_input_file(path)).metadata or {}
    recorded = meta.get(DATA_BYTES_KEY.encode())
    return int(recorded) if recorded else data_bytes(pq.read_table(path, filesystem=store.fs))


def plan_groups(
    store: OutputStore, *, target_bytes: int = FILE_BYTES, boundaries: Iterable[int] = ()
) -> list[list[tuple[str, str, str]]]:
    """Consecutive committed pairs to merge, each group about `target_bytes` of step data.

    A group never spans a part number in `boundaries` (a nightly build's first part), so each
    build's parts stay apart. Groups of one pair are left out: there is nothing to merge.
    """
    cuts = set(boundaries)
    groups: list[list[tuple[str, str, str]]] = []
    current: list[tuple[str, str, str]] = []
    size = 0
    for pair in store.committed_pairs():
        first = int(_PART_NUMS.search(pair[0]).group(1))  # type: ignore[union-attr]
        if current and (size >= target_bytes or first in cuts):
            groups.append(current)
            current, size = [], 0
        current.append(pair)
        size += _shard_bytes(store, pair[1])
    if current:
        groups.append(current)
    return [g for g in groups if len(g) > 1]


def _range_name(group: list[tuple[str, str, str]]) -> str:
    first = _PART_NUMS.search(group[0][0])
    last = _PART_NUMS.search(group[-1][0])
    assert first and last
    return f"part-{int(first.group(1)):05d}-{int(last.group(2) or last.group(1)):05d}.parquet"


def compact_output(
    uri: str, *, target_bytes: int = FILE_BYTES, boundaries: Iterable[int] = ()
) -> CompactionReport:
    """Merge a job output's small shard pairs in place into pairs of about `target_bytes`.

    Safe to stop at any point and to run again: each merged pair is written step shard first (then
    the rollouts, where kept), problem shard last (the commit); from then on readers skip the parts it covers, and they are
    deleted. Run it while no job writes to the output.
    """
    store = OutputStore(uri)
    if store.read_manifest() is None:
        raise ValueError(f"no apsgen output at {uri} (manifest.json missing); pass the folder `apsgen run` wrote")
    store.repair()  # finishes what a stopped compaction committed, drops what it did not
    before = len(store.committed_pairs())
    rows_before = _count_rows(store)
    for group in plan_groups(store, target_bytes=target_bytes, boundaries=boundaries):
        name = _range_name(group)
        steps = CompactWriter(store.fs, store.path("data"), step_schema(), single=name)
        steps.write_all(pq.read_table(data, filesystem=store.fs) for _, data, _ in group)
        steps.close()
        kept = store.shards("rollouts")
        parts = [kept[n] for n in (int(_PART_NUMS.search(name).group(1)) for name, _, _ in group) if n in kept]  # type: ignore[union-attr]
        if parts:  # the group's rollouts, merged before the problem shard commits them
            rollouts = CompactWriter(store.fs, store.path("rollouts"), rollout_schema(), single=name)
            rollouts.write_all(pq.read_table(p, filesystem=store.fs) for p in parts)
            rollouts.close()
        problems = CompactWriter(store.fs, store.path("problems"), problem_schema(), single=name)
        problems.write_all(upgrade_problems(pq.read_table(prob, filesystem=store.fs)) for _, _, prob in group)
        problems.close()
        if not problems.files:
            raise RuntimeError(f"compacting {uri}: the merged problem shard {name} was not written; nothing removed")
        store.repair()
    after = _count_rows(store)
    if after != rows_before:
        raise RuntimeError(f"compacting {uri} changed the row counts from {rows_before} to {after}; "
                           f"this is a bug, please report it (the output is still readable)")
    return CompactionReport(uri=uri, files_before=before, files_after=len(store.committed_pairs()),
                            rows=after[0], problems=after[1])


def _count_rows(store: OutputStore) -> tuple[int, int, int]:
    """(step rows, problem rows, kept rollout rows) of the committed pairs."""
    steps = problems = 0
    for _, data, prob in store.committed_pairs():
        steps += pq.ParquetFile(store.fs.open_input_file(data)).metadata.num_rows
        problems += pq.ParquetFile(store.fs.open_input_file(prob)).metadata.num_rows
    rollouts = sum(pq.ParquetFile(store.fs.open_input_file(p)).metadata.num_rows for p in store.rollout_shards())
    return steps, problems, rollouts
