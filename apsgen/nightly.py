"""Nightly builds: incremental and idempotent, so a cron job can run the same command every night.

Layout under the job's output folder ROOT:

    ROOT/                       the combined view: an ordinary job output (data/, problems/,
                                manifest.json) holding every problem once; `apsgen stats/export/push` read it
    ROOT/builds/YYYY-MM-DD/     that night's new problems only, as an output folder of its own
    ROOT/nightly.json           the ledger: per build, its date and the shard numbers it wrote

A build runs the job on the combined view, so the driver's resume skips every problem an earlier
build has (by problem id) and searches only the new ones; the shards it writes are then copied
into the dated folder. The ledger entry is written before the search starts, so a build that is
interrupted, or run twice the same night, resumes into the same dated folder and adds nothing
twice. When the job names a Hub repo, the combined view is pushed and tagged `build-YYYYMMDD`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date as Date
from datetime import datetime, timezone
from typing import Any

import pyarrow.fs as pafs

from apsgen.config import JobSpec
from apsgen.io.store import OutputStore

log = logging.getLogger(__name__)

LEDGER = "nightly.json"


class NightlyError(ValueError):
    pass


@dataclass
class BuildEntry:
    date: str  # YYYY-MM-DD
    first_part: int  # shards from this number on (up to the next build's first) are this build's
    parts: list[int] = field(default_factory=list)
    problems: int = 0
    pushed: str | None = None  # the tag, once pushed


@dataclass
class NightlyResult:
    date: str
    root: str
    build_dir: str
    new_problems: int  # searched or skipped by screening in this build (all its runs)
    already_done: int  # problems earlier builds had, skipped by id this run
    combined_problems: int
    summary: Any  # the driver's RunSummary of this run
    tag: str | None = None

    def render(self) -> str:
        ran = self.summary.searched + sum(self.summary.skipped.values())
        lines = [
            f"nightly build {self.date}: {self.new_problems} problems in {self.build_dir} "
            f"({ran} new this run)",
            f"  combined view {self.root}: {self.combined_problems} problems "
            f"({self.already_done} skipped as already built)",
        ]
        if self.tag:
            lines.append(f"  pushed and tagged {self.tag}")
        return "\n".join(lines)


def build_tag(date: str) -> str:
    return "build-" + date.replace("-", "")


def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def _check_date(text: str) -> str:
    try:
        return Date.fromisoformat(text).isoformat()
    except ValueError:
        raise NightlyError(f"build date {text!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-01-31") from None


def read_ledger(store: OutputStore) -> list[BuildEntry]:
    data = store.read_bytes(LEDGER)
    if data is None:
        return []
    return [BuildEntry(**b) for b in json.loads(data.decode())["builds"]]


def _write_ledger(store: OutputStore, builds: list[BuildEntry]) -> None:
    store.write_bytes(LEDGER, json.dumps({"builds": [asdict(b) for b in builds]}, indent=2).encode())


def _open_build(store: OutputStore, date: str) -> tuple[list[BuildEntry], BuildEntry]:
    """The ledger and tonight's entry: the latest one again, or a new one after it."""
    builds = read_ledger(store)
    if builds and date < builds[-1].date:
        raise NightlyError(
            f"build {date} is older than the latest build {builds[-1].date} in {store.uri}; builds only move "
            f"forward (omit --date to build today)"
        )
    if builds and builds[-1].date == date:
        return builds, builds[-1]
    if store.exists():
        store.repair()  # a stale shard must not shift where tonight's shards start
    # The first build adopts whatever the folder already holds (e.g. an earlier `apsgen run`).
    entry = BuildEntry(date=date, first_part=store.next_part() if builds else 0)
    builds.append(entry)
    return builds, entry


def _copy(fs: pafs.FileSystem, src: str, dst: str) -> None:
    info = fs.get_file_info(dst)
    if info.type == pafs.FileType.File and info.size == fs.get_file_info(src).size:
        return  # copied by an earlier run of this build
    fs.create_dir(dst.rsplit("/", 1)[0], recursive=True)
    tmp = dst + ".tmp-copy"
    fs.copy_file(src, tmp)
    fs.move(tmp, dst)


def materialise_build(store: OutputStore, entry: BuildEntry) -> OutputStore:
    """Copy the build's committed shards into builds/<date>/, with a manifest of its own."""
    build = OutputStore(store.path("builds", entry.date))
    problems = store.shards("problems")
    data = store.shards("data")
    entry.parts = sorted(n for n in problems if n >= entry.first_part)
    for num in entry.parts:
        name = problems[num].rsplit("/", 1)[-1]  # part-N, or part-N-M once `apsgen compact` merged parts
        if num in data:
            _copy(store.fs, data[num], build.path("data", name))
        _copy(store.fs, problems[num], build.path("problems", name))  # last: it commits the pair
    manifest = store.read_manifest()
    if manifest is not None:
        entry.problems = build.read_problems().num_rows
        manifest.total_problems = entry.problems
        build.write_manifest(manifest)
    return build


def run_nightly(
    spec: JobSpec,
    *,
    output: str | None = None,
    date: str | None = None,
    push: bool = True,
    show_progress: bool = False,
    verbose: bool = False,
    pusher: Callable[..., Any] | None = None,
) -> NightlyResult:
    """Run tonight's build of `spec` (see the module doc); returns what it added."""
    from apsgen.runner.driver import run_job

    date = _check_date(date or _today())
    root = output or spec.output_dir()
    store = OutputStore(root)
    builds, entry = _open_build(store, date)
    _write_ledger(store, builds)  # before searching: an interrupted build resumes into the same entry
    log.info("nightly build %s of job %s into %s (shards from %d)", date, spec.name, root, entry.first_part)

    summary = run_job(spec, output=root, show_progress=show_progress, verbose=verbose)
    build = materialise_build(store, entry)
    _write_ledger(store, builds)

    tag = None
    if push and spec.hub.repo_id:
        if pusher is None:
            from apsgen.hub.push import push as pusher
        tag = build_tag(date)
        pusher(root, spec.hub.repo_id, private=spec.hub.private, tag=tag, build=date)
        entry.pushed = tag
        _write_ledger(store, builds)
    elif push:
        log.info("job %s has no hub.repo_id: build %s stays local", spec.name, date)
    return NightlyResult(
        date=date,
        root=root,
        build_dir=build.uri,
        new_problems=entry.problems,
        already_done=summary.already_done,
        combined_problems=store.read_problems().num_rows,
        summary=summary,
        tag=tag,
    )
