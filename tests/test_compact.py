"""Compaction: few large files, the same bytes for the same rows however they arrived, and an
in-place `apsgen compact` that can be stopped at any point without losing or doubling a row."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from known_output import KNOWN_TREE, make_output, problem

from apsgen.cli.main import main
from apsgen.io.compact import CompactWriter, compact_output
from apsgen.io.store import OutputStore

REPO = Path(__file__).resolve().parents[1]


def _table(n: int, start: int = 0) -> pa.Table:
    return pa.table({"i": list(range(start, start + n)), "text": [f"row {i} " * (i % 7) for i in range(start, start + n)]})


def _write(folder: Path, chunks: list[pa.Table], **kw) -> dict[str, str]:
    writer = CompactWriter(pafs.LocalFileSystem(), str(folder), chunks[0].schema, **kw)
    folder.mkdir(parents=True, exist_ok=True)
    writer.write_all(chunks)
    writer.close()
    return {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in writer.files}


def test_same_rows_give_the_same_files_however_they_are_chunked(tmp_path):
    rows = _table(5000)
    sizes = dict(file_bytes=60_000, row_group_bytes=15_000, block_rows=64)
    one = _write(tmp_path / "one", [rows], **sizes)
    many = _write(tmp_path / "many", [rows.slice(s, 37) for s in range(0, 5000, 37)], **sizes)
    assert one == many and len(one) > 2
    # Appending rows leaves every file but the last as it was: a re-push uploads little.
    more = _write(tmp_path / "more", [rows, _table(300, 5000)], **sizes)
    assert [more[n] == one[n] for n in sorted(one)][:-1] == [True] * (len(one) - 1)
    total = sum(pq.ParquetFile(tmp_path / "more" / n).metadata.num_rows for n in more)
    assert total == 5300
    meta = pq.ParquetFile(tmp_path / "one" / "part-00000.parquet").metadata
    assert meta.num_row_groups > 1 and all(meta.row_group(i).num_rows % 64 == 0 for i in range(meta.num_row_groups))


def test_no_rows_write_no_file(tmp_path):
    assert _write(tmp_path / "e", [_table(0)]) == {}
    assert not list((tmp_path / "e").iterdir())


def _many_parts(path: Path, n_parts: int = 12) -> str:
    """An output of `n_parts` shard pairs, the first one all skipped (no step rows)."""
    out = make_output(path, steps=[], problems=[problem("skipped-0", "skipped", "all_wrong")])
    store = OutputStore(out)
    for num in range(1, n_parts):
        pid = f"p{num}"
        rows = [{**r, "problem_id": pid, "tree_id": f"{pid}-fp"} for r in KNOWN_TREE]
        store.write_part(num, rows, [problem(pid, n_steps=len(rows))])
    return out


def _counts(out: str) -> tuple[int, int, int]:
    store = OutputStore(out)
    steps, problems = store.read_steps(), store.read_problems()
    keys = set(zip(steps.column("problem_id").to_pylist(), steps.column("node_id").to_pylist()))
    assert len(keys) == steps.num_rows, "a step row is there twice"
    assert len(set(problems.column("problem_id").to_pylist())) == problems.num_rows, "a problem is there twice"
    return steps.num_rows, problems.num_rows, len(store.committed_pairs())


def test_compact_merges_pairs_in_place_and_keeps_every_row(tmp_path):
    out = _many_parts(tmp_path / "out")
    steps, problems, pairs = _counts(out)
    assert (steps, problems, pairs) == (77, 12, 12)
    report = compact_output(out, target_bytes=5_000)
    assert report.files_before == 12 and 1 < report.files_after < 12
    assert _counts(out)[:2] == (steps, problems)
    names = sorted(p.name for p in (tmp_path / "out" / "data").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "out" / "problems").iterdir())
    assert any("-" in n.removeprefix("part-") for n in names)
    # Compacted again: nothing left to merge at that size, the same files stay.
    assert compact_output(out, target_bytes=5_000).files_after == report.files_after
    # New parts after compaction get numbers after every compacted range.
    assert OutputStore(out).next_part() == 12


class Stop(BaseException):
    """Raised from inside the filesystem: the process stops right there, as if killed."""


class StoppingFS(LocalFileSystem):
    """The local filesystem (through fsspec), stopping at its `stop_at`-th rename or delete."""

    def __init__(self, stop_at: int):
        super().__init__(skip_instance_cache=True)
        self.stop_at, self.calls = stop_at, 0

    def _count(self) -> None:
        self.calls += 1
        if self.calls == self.stop_at:
            raise Stop()

    def mv(self, *args, **kwargs):
        self._count()
        return super().mv(*args, **kwargs)

    def rm(self, *args, **kwargs):
        self._count()
        return super().rm(*args, **kwargs)


def test_compact_stopped_at_every_step_never_loses_or_doubles_a_row(tmp_path, monkeypatch):
    from apsgen.io import store as store_module

    reference = _many_parts(tmp_path / "ref")
    expected = _counts(reference)[:2]
    compact_output(reference, target_bytes=5_000)
    final_pairs = _counts(reference)[2]
    real_open_fs = store_module.open_fs
    # Each filesystem change (rename or delete) is a point where a kill can land: stop at each.
    stop_at = 1
    while True:
        out = _many_parts(tmp_path / f"run{stop_at}")
        fs = StoppingFS(stop_at)
        monkeypatch.setattr(store_module, "open_fs", lambda uri: (pafs.PyFileSystem(pafs.FSSpecHandler(fs)), uri))
        try:
            compact_output(out, target_bytes=5_000)
            finished = True
        except Stop:
            finished = False
        monkeypatch.setattr(store_module, "open_fs", real_open_fs)
        # Whatever the stop left, readers see every row once; running it again finishes the job.
        assert _counts(out)[:2] == expected
        compact_output(out, target_bytes=5_000)
        assert _counts(out) == (*expected, final_pairs)
        assert not [p for p in Path(out).rglob("*") if ".tmp-" in p.name]
        if finished:
            break
        stop_at += 1
    assert stop_at > 10


def test_compact_killed_by_a_signal_then_rerun_keeps_every_row(tmp_path):
    out = make_output(tmp_path / "out", steps=[], problems=[problem("skipped-0", "skipped", "all_wrong")])
    store = OutputStore(out)
    big = "x" * 2000
    for num in range(1, 120):
        pid = f"p{num}"
        rows = [{**r, "problem_id": pid, "tree_id": f"{pid}-fp", "question": big} for r in KNOWN_TREE]
        store.write_part(num, rows, [problem(pid, n_steps=len(rows))])
    expected = _counts(out)[:2]
    code = f"from apsgen.io.compact import compact_output; compact_output({out!r}, target_bytes=50_000)"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _counts(out)[:2] == expected
    assert main(["compact", out]) == 0
    steps, problems, pairs = _counts(out)
    assert (steps, problems) == expected and pairs < 10
    assert not [p for p in (tmp_path / "out").rglob("*") if ".tmp-" in p.name]


def test_compact_keeps_nightly_builds_apart(tmp_path):
    out = _many_parts(tmp_path / "out")
    compact_output(out, target_bytes=10**9, boundaries=[6])
    names = sorted(p.name for p in (tmp_path / "out" / "problems").iterdir())
    assert names == ["part-00000-00005.parquet", "part-00006-00011.parquet"]


def test_compact_refuses_a_folder_without_output(tmp_path, capsys):
    assert main(["compact", str(tmp_path)]) == 2
    assert "manifest.json missing" in capsys.readouterr().err
