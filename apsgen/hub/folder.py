"""The folder a push uploads, built exactly as it is uploaded (so `--dry-run DIR` shows the truth).

    README.md                      the generated dataset card (YAML metadata with `configs:`)
    job.yaml                       the job spec that produced the data (reproduce with `apsgen run`)
    data/steps/part-XXXXX.parquet  the canonical step rows (MC values, counts, provenance)
    data/problems/part-XXXXX.parquet  one row per problem (cost, skip reason, verifier outcomes)
    data/<format>/part-XXXXX.parquet  each export format, hard labels as the card says

No data file is empty: a part with no rows (a flush whose problems were all skipped) is left out,
and so is a config with no rows at all, because the `datasets` loader fails on empty Parquet files.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from apsgen.hub.card import render_card
from apsgen.io.export import DEFAULT_THRESHOLD, FORMATS, export, step_shards
from apsgen.io.stats import compute_stats
from apsgen.io.store import OutputStore

log = logging.getLogger(__name__)

CANONICAL_CONFIGS = ("steps", "problems")
_OURS = {"README.md", "job.yaml", "data"}


class HubFolderError(ValueError):
    pass


@dataclass
class HubFolder:
    path: Path
    configs: list[str]
    files: list[str] = field(default_factory=list)  # relative paths, sorted


def _copy_parts(store: OutputStore, sub: str, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    parts = step_shards(store) if sub == "data" else sorted(store.shards(sub).items())
    for num, src in parts:
        with store.fs.open_input_stream(src) as f, open(dest / f"part-{num:05d}.parquet", "wb") as out:
            shutil.copyfileobj(f, out, length=1 << 20)


def _drop_empty(config_dir: Path) -> bool:
    """Remove 0-row Parquet files (the `datasets` loader and the Hub viewer fail on them, alone or
    beside others); True when the config still has data."""
    import pyarrow.parquet as pq

    kept = False
    for path in sorted(config_dir.glob("*.parquet")):
        if pq.read_metadata(path).num_rows == 0:
            path.unlink()
            path.with_suffix(".jsonl").unlink(missing_ok=True)
        else:
            kept = True
    if not kept:
        shutil.rmtree(config_dir, ignore_errors=True)
    return kept


def build_hub_folder(
    output: str,
    dest: str | Path,
    *,
    formats: list[str] | None = None,
    threshold: float | None = DEFAULT_THRESHOLD,
    repo_id: str | None = None,
    build: str | None = None,
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
    formats = list(FORMATS) if formats is None else formats
    _copy_parts(store, "data", dest / "data" / "steps")
    _copy_parts(store, "problems", dest / "data" / "problems")
    if formats:
        export(output, formats, str(dest / "data"), threshold=threshold)
    declared = [*CANONICAL_CONFIGS, *(f for f in FORMATS if f in set(formats))]
    # A config with no rows is left out rather than shipped empty: it would not load.
    configs = [c for c in declared if _drop_empty(dest / "data" / c)]
    if declared != configs:
        log.info("hub folder: configs without rows left out: %s", ", ".join(c for c in declared if c not in configs))
    stats = compute_stats(output)
    first = store.read_steps().slice(0, 1).to_pylist() if stats.steps else []
    (dest / "job.yaml").write_text(yaml.safe_dump(manifest.spec, sort_keys=False, allow_unicode=True))
    card = render_card(
        manifest=manifest, stats=stats, configs=configs, threshold=threshold, repo_id=repo_id,
        provenance=first[0] if first else None, build=build,
    )
    (dest / "README.md").write_text(card, encoding="utf-8")
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    log.debug("hub folder %s: %d files", dest, len(files))
    return HubFolder(path=dest, configs=configs, files=files)
