"""The folder a push uploads, built exactly as it is uploaded (so `--dry-run DIR` shows the truth).

    README.md                      the generated dataset card (YAML metadata with `configs:`)
    job.yaml                       the job spec that produced the data (reproduce with `apsgen run`)
    data/steps/part-XXXXX.parquet  the canonical step rows (MC values, counts, provenance)
    data/problems/part-XXXXX.parquet  one row per problem (cost, skip reason, verifier outcomes)
    data/rollouts/part-XXXXX.parquet  every completion drawn, where the job kept them (runner.keep_rollouts)
    data/<format>/part-XXXXX.parquet  each export format, hard labels as the card says
    audit/<auditor>.jsonl          the human audit's verdicts, when the output was audited (apsgen audit)

Every config is written as few large files (`apsgen.io.compact`: about 512 MB of data per file,
32 MB row groups), byte-identical for the same rows, so a re-push uploads only files whose content
changed. No file is empty: a config without rows is left out of the folder and the card (a Parquet
file without rows does not load in `datasets` or the Hub viewer).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import yaml

from apsgen.audit.record import AuditLog
from apsgen.audit.report import attach_audit
from apsgen.hub.card import render_card
from apsgen.io.compact import compact_tables
from apsgen.io.export import ALIASES, DEFAULT_THRESHOLD, FORMATS, export
from apsgen.io.schema import problem_schema, rollout_schema, step_schema, upgrade_problems
from apsgen.io.stats import compute_stats
from apsgen.io.store import OutputStore

log = logging.getLogger(__name__)

CANONICAL_CONFIGS = ("steps", "problems", "rollouts")
_OURS = {"README.md", "job.yaml", "data", "audit"}


class HubFolderError(ValueError):
    pass


@dataclass
class HubFolder:
    path: Path
    configs: list[str]  # configs with rows, as the card declares them
    empty_configs: list[str] = field(default_factory=list)  # asked for, but without rows: left out
    files: list[str] = field(default_factory=list)  # relative paths, sorted


def _write_canonical(store: OutputStore, dest: Path) -> dict[str, int]:
    """data/steps, data/problems and (where kept) data/rollouts as compacted files; rows per config."""
    fs = pafs.LocalFileSystem()
    pairs = store.committed_pairs()
    steps = compact_tables(fs, str(dest / "steps"), step_schema(),
                           (pq.read_table(d, filesystem=store.fs) for _, d, _ in pairs))
    problems = compact_tables(fs, str(dest / "problems"), problem_schema(),
                              (upgrade_problems(pq.read_table(p, filesystem=store.fs)) for _, _, p in pairs))
    rollouts = compact_tables(fs, str(dest / "rollouts"), rollout_schema(),
                              (pq.read_table(p, filesystem=store.fs) for p in store.rollout_shards()))
    return {"steps": steps.rows, "problems": problems.rows, "rollouts": rollouts.rows}


def _copy_audits(store: OutputStore, dest: Path) -> None:
    """The human audit's verdict files go with the data, as the evidence for the card's figure."""
    shutil.rmtree(dest, ignore_errors=True)
    log_ = AuditLog(store.uri)
    for auditor in log_.auditors():
        data = store.read_bytes(f"audit/{auditor}.jsonl")
        if data:
            dest.mkdir(parents=True, exist_ok=True)
            (dest / f"{auditor}.jsonl").write_bytes(data)


def _first_step(store: OutputStore) -> list[dict]:
    """The first step row (its provenance goes into the card), without reading every shard."""
    for _, data, _ in store.committed_pairs():
        table = pq.read_table(data, filesystem=store.fs)
        if table.num_rows:
            return table.slice(0, 1).to_pylist()
    return []


def build_hub_folder(
    output: str,
    dest: str | Path,
    *,
    formats: list[str] | None = None,
    threshold: float | None = DEFAULT_THRESHOLD,
    repo_id: str | None = None,
    build: str | None = None,
    correct_paths: bool = True,
) -> HubFolder:
    """Write the upload folder for the job output at `output` into `dest` (created or refreshed)."""
    store = OutputStore(output)
    manifest = store.read_manifest()
    if manifest is None:
        raise HubFolderError(f"no apsgen output at {output} (manifest.json missing); pass the folder `apsgen run` wrote")
    dest = Path(dest)
    if dest.exists():
        strangers = sorted(p.name for p in dest.iterdir() if p.name not in _OURS)
        if strangers:
            raise HubFolderError(
                f"{dest} holds files a push would not upload ({', '.join(strangers[:5])}); "
                f"give an empty or new folder"
            )
        shutil.rmtree(dest / "data", ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    formats = list(FORMATS) if formats is None else [ALIASES.get(f, f) for f in formats]
    rows = _write_canonical(store, dest / "data")
    if not rows["problems"]:
        raise HubFolderError(f"{output} holds no finished problem yet; run the job before pushing it")
    if formats:
        rows.update(export(output, formats, str(dest / "data"), threshold=threshold, correct_paths=correct_paths).rows)
    kept = [c for c in CANONICAL_CONFIGS if c != "rollouts" or rows["rollouts"]]  # rollouts: where the job kept them
    if not rows["rollouts"]:
        shutil.rmtree(dest / "data" / "rollouts", ignore_errors=True)
    wanted = [*kept, *(f for f in FORMATS if f in set(formats))]
    configs = [c for c in wanted if rows.get(c)]
    empty = [c for c in wanted if not rows.get(c)]
    for name in empty:
        shutil.rmtree(dest / "data" / name, ignore_errors=True)
    stats = attach_audit(compute_stats(output), output)
    _copy_audits(store, dest / "audit")
    first = _first_step(store)
    (dest / "job.yaml").write_text(yaml.safe_dump(manifest.spec, sort_keys=False, allow_unicode=True))
    card = render_card(
        manifest=manifest, stats=stats, configs=configs, threshold=threshold, repo_id=repo_id,
        provenance=first[0] if first else None, build=build, empty_configs=empty,
    )
    (dest / "README.md").write_text(card, encoding="utf-8")
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    log.debug("hub folder %s: %d files", dest, len(files))
    return HubFolder(path=dest, configs=configs, empty_configs=empty, files=files)
