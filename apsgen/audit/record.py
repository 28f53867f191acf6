"""Audit verdicts: one JSON line per answer in `OUT/audit/<auditor>.jsonl`, never rewritten in place.

A line holds the path's ids (path id = `<tree_id>/<node_id of its last step>`), the answer, the
output digest and seed of the sample it came from, the time, and what the auditor was shown. A
later line for the same path (same auditor and digest) supersedes an earlier one. A line cut off
by a crash is the last line only: it is ignored with a warning, every whole line before it kept.

Answers: `right` (the label holds: the located step is the first wrong one; on an all-correct
path, every step is fine), `earlier` (a step before the located one is already wrong, or on an
all-correct path some step is wrong; `wrong_step` says which, 0-based), `fine` (the located step
is not wrong: the label came too early), `skip` (the auditor cannot tell).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from apsgen.audit.sample import ALL_CORRECT, FIRST_ERROR, AuditError, AuditItem, Candidate, Sample
from apsgen.io.store import OutputStore

log = logging.getLogger(__name__)

ANSWERS = ("right", "earlier", "fine", "skip")
AUDIT_DIR = "audit"
_AUDITOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SHOWN_CHARS = 2000  # of one step or question, as shown and recorded (model output can be megabytes)
EXPORT_FIELDS = [
    "path_id", "kind", "output_digest", "seed", "problem_id", "question", "gold_answer", "steps",
    "labelled_step", "evidence", "judge_first_error", "answer", "wrong_step", "note",
]


def clip(text: str, limit: int = SHOWN_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]} … ({len(text) - limit} more characters)"


def check_auditor(name: str) -> str:
    if not _AUDITOR.match(name):
        raise AuditError(f"auditor name {name!r} must be letters, digits, '.', '_' or '-' (it names the file audit/<auditor>.jsonl)")
    return name


@dataclass(frozen=True)
class Reading:
    """A person's reading of one sampled path: right, an earlier step wrong, too early, or skipped."""

    path_id: str
    kind: str
    answer: str
    auditor: str
    output_digest: str
    seed: int
    at: str
    wrong_step: int | None = None  # 0-based along the path, with `earlier`
    problem_id: str = ""
    tree_id: str = ""
    labelled_step: int | None = None
    n_steps: int = 0
    note: str = ""
    shown: dict[str, Any] = field(default_factory=dict)

    @property
    def true_first_error(self) -> int | None:
        """The first wrong step as the auditor reads it (-1: none), None when not known (fine: later or none)."""
        if self.answer == "right":
            return self.labelled_step if self.kind == FIRST_ERROR else -1
        if self.answer == "earlier":
            return self.wrong_step
        return None


def check_answer(candidate: Candidate, answer: str, wrong_step: int | None) -> None:
    """Refuse an answer this path cannot have, naming it (0-based `wrong_step`, shown 1-based)."""
    if answer not in ANSWERS:
        raise AuditError(f"unknown answer {answer!r}: one of {', '.join(ANSWERS)}")
    if answer != "earlier":
        if wrong_step is not None:
            raise AuditError(f"a wrong step ({wrong_step + 1}) goes only with the answer 'earlier', not {answer!r}")
        if answer == "fine" and candidate.kind == ALL_CORRECT:
            raise AuditError("'fine' says a located first error is not wrong; an all-correct path has none (answer right or earlier)")
        return
    limit = candidate.labelled_step if candidate.kind == FIRST_ERROR else candidate.n_steps
    if wrong_step is None:
        raise AuditError("the answer 'earlier' needs the step that is wrong")
    if not 0 <= wrong_step < (limit or 0):
        where = (f"before the located step {limit + 1}" if candidate.kind == FIRST_ERROR and limit is not None
                 else f"of its {limit} steps")
        raise AuditError(f"step {wrong_step + 1} is out of range: the path's wrong step must be one {where} (1 to {limit})")


def make_reading(item: AuditItem, answer: str, wrong_step: int | None, *, auditor: str, sample: Sample,
                 note: str = "") -> Reading:
    check_answer(item.candidate, answer, wrong_step)
    shown = item.shown()
    shown["question"] = clip(shown["question"])
    shown["steps"] = [clip(s) for s in shown["steps"]]
    shown["after"] = [clip(s) for s in shown["after"]]
    return Reading(
        path_id=item.path_id, kind=item.kind, answer=answer, auditor=auditor, output_digest=sample.digest,
        seed=sample.seed, at=datetime.now(timezone.utc).isoformat(timespec="seconds"), wrong_step=wrong_step,
        problem_id=item.problem_id, tree_id=item.tree_id, labelled_step=item.candidate.labelled_step,
        n_steps=item.candidate.n_steps, note=note, shown=shown,
    )


class AuditLog:
    """The verdict files of one output (`OUT/audit/*.jsonl`)."""

    def __init__(self, output: str):
        self.store = OutputStore(output)

    def _rel(self, auditor: str) -> str:
        return f"{AUDIT_DIR}/{check_auditor(auditor)}.jsonl"

    def auditors(self) -> list[str]:
        sel = pafs.FileSelector(self.store.path(AUDIT_DIR), allow_not_found=True)
        names = [i.path.rsplit("/", 1)[-1] for i in self.store.fs.get_file_info(sel) if i.type == pafs.FileType.File]
        return sorted(n[: -len(".jsonl")] for n in names if n.endswith(".jsonl") and _AUDITOR.match(n[: -len(".jsonl")]))

    def read(self, auditor: str) -> list[Reading]:
        """Every whole line of the auditor's file, in order."""
        data = self.store.read_bytes(self._rel(auditor))
        if not data:
            return []
        lines = data.decode("utf-8", errors="replace").split("\n")
        out: list[Reading] = []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                out.append(Reading(**raw))
            except (ValueError, TypeError) as e:
                if n >= len(lines) - 1:  # the last line, cut off by a crash mid-write
                    log.warning("%s line %d is incomplete and ignored (%s)", self._rel(auditor), n, e)
                    continue
                raise AuditError(f"{self.store.path(self._rel(auditor))} line {n} is not a verdict: {e}") from None
        return out

    def read_all(self) -> list[Reading]:
        return [v for a in self.auditors() for v in self.read(a)]

    def append(self, verdicts: Iterable[Reading]) -> int:
        """Add verdicts (all one auditor's) at the end of their file; durable when this returns."""
        verdicts = list(verdicts)
        if not verdicts:
            return 0
        auditor = verdicts[0].auditor
        if any(v.auditor != auditor for v in verdicts):
            raise AuditError("one append holds one auditor's verdicts")
        text = "".join(json.dumps(asdict(v), ensure_ascii=False, sort_keys=True) + "\n" for v in verdicts)
        rel = self._rel(auditor)
        if isinstance(self.store.fs, pafs.LocalFileSystem):
            path = Path(self.store.path(rel))
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(text)
                f.flush()
        else:  # an object store has no append: rewrite the (small) file atomically
            old = self.store.read_bytes(rel) or b""
            if old and not old.endswith(b"\n"):
                old += b"\n"
            self.store.write_bytes(rel, old + text.encode("utf-8"))
        return len(verdicts)


def latest(verdicts: Iterable[Reading]) -> dict[tuple[str, str], Reading]:
    """(auditor, path id) -> the last verdict given (filter by output digest first)."""
    out: dict[tuple[str, str], Reading] = {}
    for v in verdicts:
        out[(v.auditor, v.path_id)] = v
    return out


# ---- export and import ---------------------------------------------------------------------------

def _evidence(item: AuditItem) -> str:
    step = item.steps[-1]
    flawed = f", {step.n_correct_flawed} after a shown error" if step.n_correct_flawed else ""
    mc = "n/a" if step.mc_value is None else f"{step.mc_value:.2f} ({step.n_correct}/{step.n_rollouts} rollouts right{flawed})"
    return f"verdict {step.verdict} by {step.basis or 'rollouts'}; MC {mc}"


def export_rows(sample: Sample, answered: dict[str, Reading]) -> list[dict[str, Any]]:
    rows = []
    for item in sample.items:
        v = answered.get(item.path_id)
        labelled = item.candidate.labelled_step
        rows.append({
            "path_id": item.path_id, "kind": item.kind, "output_digest": sample.digest, "seed": sample.seed,
            "problem_id": item.problem_id, "question": clip(item.question), "gold_answer": item.gold_answer,
            "steps": "\n".join(f"{i + 1}. [{s.label}] {clip(s.text)}" for i, s in enumerate(item.steps)),
            "labelled_step": "" if labelled is None else labelled + 1, "evidence": _evidence(item),
            "judge_first_error": "" if item.judge_first_error is None
            else ("none" if item.judge_first_error < 0 else item.judge_first_error + 1),
            "answer": v.answer if v else "", "wrong_step": "" if v is None or v.wrong_step is None else v.wrong_step + 1,
            "note": v.note if v else "",
        })
    return rows


def write_export(path: str, sample: Sample, answered: dict[str, Reading]) -> int:
    """The sample as CSV (`.csv`) or JSON lines (anything else), answers filled in where given."""
    rows = export_rows(sample, answered)
    if path.lower().endswith(".csv"):
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS)
        w.writeheader()
        w.writerows(rows)
        Path(path).write_text(buf.getvalue(), encoding="utf-8")
    else:
        Path(path).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


def _records(path: str) -> list[tuple[str, dict[str, Any]]]:
    """(where, record) of a CSV or JSON-lines file: "line N", or for CSV the spreadsheet row and the
    file line it starts on (a cell may span lines)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise AuditError(f"cannot read {path}: {e.strerror}") from None
    if path.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        missing = {"path_id", "answer"} - set(reader.fieldnames or [])
        if missing:
            raise AuditError(f"{path} has no {', '.join(sorted(missing))} column (the columns `apsgen audit --export` writes)")
        out = []
        start = reader.line_num + 1
        for row, rec in enumerate(reader, 2):
            out.append((f"row {row} (line {start})", rec))
            start = reader.line_num + 1
        return out
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise AuditError(f"{path} line {n} is not JSON: {e}") from None
        if not isinstance(rec, dict):
            raise AuditError(f"{path} line {n} is not a JSON object")
        out.append((f"line {n}", rec))
    return out


def _step_number(value: Any, n: str, path: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise AuditError(f"{path} {n}: wrong_step {value!r} is not a step number") from None
    return number - 1


def read_import(path: str, sample: Sample, auditor: str) -> tuple[list[Reading], int]:
    """The verdicts of an import file, every line checked before any is kept: (verdicts, unanswered)."""
    by_id = {item.path_id: item for item in sample.items}
    verdicts: list[Reading] = []
    unanswered = 0
    for n, rec in _records(path):
        pid = str(rec.get("path_id") or "").strip()
        answer = str(rec.get("answer") or "").strip().lower()
        digest = str(rec.get("output_digest") or "").strip()
        if digest and digest != sample.digest:
            raise AuditError(
                f"{path} {n}: exported from another state of the output (digest {digest}, now {sample.digest}); "
                f"export the current sample again"
            )
        if pid not in sample.candidates:
            raise AuditError(f"{path} {n}: path id {pid!r} is not a labelled path of this output")
        if not answer:
            unanswered += 1
            continue
        item = by_id.get(pid)
        if item is None:
            raise AuditError(f"{path} {n}: path {pid} is not in this sample (seed {sample.seed}, {len(sample.items)} paths); "
                             f"import with the --seed and --sample it was exported with")
        try:
            verdicts.append(make_reading(item, answer, _step_number(rec.get("wrong_step"), n, path),
                                         auditor=auditor, sample=sample, note=str(rec.get("note") or "")))
        except AuditError as e:
            raise AuditError(f"{path} {n}: {e}") from None
    return verdicts, unanswered
