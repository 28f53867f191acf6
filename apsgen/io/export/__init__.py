"""Exports: a job's canonical step rows rewritten in the formats PRM trainers read.

`export(OUT_DIR, formats, dest)` reads the output shard by shard (a problem's rows never span two
shards, so memory stays one shard deep) and writes `dest/<format>/part-XXXXX.parquet` (and
`.jsonl` on request) as few large files (`apsgen.io.compact`): the same output always gives the
same bytes, and a format with no rows writes no file. Hard labels come from the stored verdicts,
or from MC at `threshold` when one is given (see formats.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from apsgen.io.export.formats import (
    ALIASES,
    DEFAULT_THRESHOLD,
    FORMATS,
    ExportFormat,
    check_threshold,
    get_format,
    label_description,
)
from apsgen.io.compact import CompactWriter
from apsgen.io.store import OutputStore, open_fs
from apsgen.paths import CONVENTIONS

log = logging.getLogger(__name__)

__all__ = ["ALIASES", "DEFAULT_THRESHOLD", "FORMATS", "ExportError", "ExportReport", "export", "export_rows", "iter_trees"]


class ExportError(ValueError):
    """An export that cannot run (no output there, unknown format, bad threshold)."""


@dataclass
class ExportReport:
    dest: str
    threshold: float | None
    rows: dict[str, int] = field(default_factory=dict)  # format -> rows written
    files: dict[str, list[str]] = field(default_factory=dict)  # format -> files written

    def render(self) -> str:
        lines = [f"exported to {self.dest} (label: {label_description(self.threshold)})"]
        for name, n in self.rows.items():
            lines.append(f"  {name:<14} {n} rows in {len(self.files[name])} files")
        return "\n".join(lines)


def step_shards(store: OutputStore) -> list[tuple[int, str]]:
    """(position, path) of the committed step shards, in order."""
    # The store owns the layout; its listing is the one place that knows the shard names.
    return [(i, data) for i, (_, data, _) in enumerate(store.committed_pairs())]


def iter_trees(table: pa.Table) -> Iterator[list[dict[str, Any]]]:
    """One list of rows per search tree, trees in order of first appearance."""
    trees: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in table.to_pylist():
        trees.setdefault((row["problem_id"], row["tree_id"]), []).append(row)
    yield from trees.values()


def export_rows(
    fmt: ExportFormat, table: pa.Table, threshold: float | None, *, correct_paths: bool = True, consensus: bool = False,
    convention: str = "first_error",
) -> list[dict[str, Any]]:
    """The rows of `fmt` for a table of step rows."""
    out: list[dict[str, Any]] = []
    for tree in iter_trees(table):
        out.extend(fmt.rows(tree, threshold, correct_paths, consensus, convention=convention))
    return out


def _resolve(formats: Iterable[str]) -> list[ExportFormat]:
    names: list[str] = []
    for item in formats:
        for name in item.split(","):
            name = name.strip()
            if name == "all":
                names.extend(FORMATS)
            elif name:
                names.append(name)
    if not names:
        raise ExportError(f"no export format given; choose from: {', '.join(FORMATS)} (or all)")
    try:
        fmts = [get_format(n) for n in names]
    except ValueError as e:
        raise ExportError(str(e)) from None
    return list({f.name: f for f in fmts}.values())


def _clear_parts(fs: pafs.FileSystem, folder: str) -> None:
    # A re-export must not leave parts of an earlier, larger export behind.
    for info in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
        name = info.path.rsplit("/", 1)[-1]
        if info.type == pafs.FileType.File and name.startswith("part-"):
            fs.delete_file(info.path)


def judged_paths(store: OutputStore) -> int:
    """Paths the job's judge read, over the committed problem rows (0 without a judge)."""
    total = 0
    for _, _, problems in store.committed_pairs():
        table = pq.read_table(problems, filesystem=store.fs)
        if "n_judged_paths" in table.column_names:
            total += sum(v or 0 for v in table.column("n_judged_paths").to_pylist())
    return total


def export(
    output: str,
    formats: Iterable[str],
    dest: str | None = None,
    *,
    threshold: float | None = DEFAULT_THRESHOLD,
    jsonl: bool = False,
    correct_paths: bool = True,
    consensus: bool = False,
    convention: str = "first_error",
) -> ExportReport:
    """Export a job's output folder in each of `formats` to `dest/<format>/` (default OUT/exports).

    `correct_paths` adds the correct sampled solutions as all-good paths to the path formats;
    `consensus` keeps only the paths the job's LLM judge agreed with; `convention` says what follows a
    first error on a path (`first_error`: nothing; `corrected`: the span a reflection corrected, see
    apsgen.paths).
    """
    if convention not in CONVENTIONS:
        raise ExportError(f"--convention {convention!r}: expected one of {', '.join(CONVENTIONS)}")
    try:
        check_threshold(threshold)
    except ValueError as e:
        raise ExportError(str(e)) from None
    fmts = _resolve(formats)
    store = OutputStore(output)
    manifest = store.read_manifest()
    if manifest is None:
        raise ExportError(f"no apsgen output at {output} (manifest.json missing); pass the folder `apsgen run` wrote")
    if consensus:
        if threshold is not None:
            raise ExportError(
                f"--consensus keeps paths the judge agreed with under the stored verdicts; it cannot be combined "
                f"with --threshold {threshold} (the relabelled paths are not the ones the judge read)"
            )
        if not judged_paths(store):
            raise ExportError(
                f"{output} has no judge verdicts: add a `judge:` section to the job and run it (into a new "
                f"--output, or with --new-version) before exporting with --consensus"
            )
    dest = dest or f"{output.rstrip('/')}/exports"
    fs, root = open_fs(dest)
    report = ExportReport(dest=dest, threshold=threshold)
    meta = {"apsgen_threshold": "verdict" if threshold is None else str(threshold),
            "apsgen_fingerprint": manifest.fingerprint, "apsgen_correct_paths": str(correct_paths).lower(), "apsgen_consensus": str(consensus).lower(),
            "apsgen_convention": convention}
    writers: dict[str, CompactWriter] = {}
    for fmt in fmts:
        folder = f"{root.rstrip('/')}/{fmt.name}"
        fs.create_dir(folder, recursive=True)
        _clear_parts(fs, folder)
        schema = fmt.schema.with_metadata({**meta, "apsgen_format": fmt.name})
        writers[fmt.name] = CompactWriter(fs, folder, schema, jsonl=jsonl)
    for _, path in step_shards(store):
        table = pq.read_table(path, filesystem=store.fs)
        for fmt in fmts:
            rows = export_rows(fmt, table, threshold, correct_paths=correct_paths, consensus=consensus,
                               convention=convention)
            if rows:
                writers[fmt.name].write(pa.Table.from_pylist(rows, schema=writers[fmt.name].schema))
    for fmt in fmts:
        writer = writers[fmt.name]
        names = writer.close()
        report.rows[fmt.name] = writer.rows
        report.files[fmt.name] = [f"{root.rstrip('/')}/{fmt.name}/{n}" for n in names]
        if jsonl:
            report.files[fmt.name] += [f[: -len(".parquet")] + ".jsonl" for f in report.files[fmt.name]]
        log.debug("export %s: %d rows", fmt.name, writer.rows)
    return report
