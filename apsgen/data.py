"""Loading problems: `datasets.load_dataset`, column mapping, gold-answer extraction, stable ids,
dedup and the contamination filter. Knows nothing about search."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any

from apsgen.config import DatasetSpec
from apsgen.problem import Problem, join_steps, normalise_text, problem_id  # noqa: F401 (re-exported)
from apsgen.verify.extract import announced_answer, boxed_spans, last_boxed
from apsgen.verify.normalize import normalize
from apsgen.verify.numeric import parse_rational

log = logging.getLogger(__name__)

_LOCAL_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
_GSM8K_ANSWER = re.compile(r"####\s*(.+?)\s*$", re.S)


class DatasetError(ValueError):
    """A dataset that cannot be loaded as a whole (missing file, unknown column)."""


@dataclass
class BadRow:
    row: int
    reason: str


@dataclass
class LoadReport:
    """Problems ready to search, and what was dropped on the way (never silently)."""

    problems: list[Problem]
    source: str
    n_rows: int
    bad_rows: list[BadRow] = field(default_factory=list)
    n_duplicates: int = 0
    n_excluded: int = 0  # dropped by the contamination filter

    def summary(self) -> str:
        parts = [f"{len(self.problems)} problems from {self.source} ({self.n_rows} rows)"]
        if self.bad_rows:
            parts.append(f"{len(self.bad_rows)} bad rows")
        if self.n_duplicates:
            parts.append(f"{self.n_duplicates} duplicates")
        if self.n_excluded:
            parts.append(f"{self.n_excluded} excluded as contaminated")
        return ", ".join(parts)


# A given solution longer than this is a bad row: labelling it would mean prompts past any context.
MAX_GIVEN_SOLUTION_CHARS = 100_000
MAX_GIVEN_STEPS = 200


def given_steps(value: Any) -> tuple[tuple[str, ...] | None, str | None]:
    """(steps, None) for a usable list of steps, else (None, why not)."""
    if value is None or isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return None, f"expected a list of steps, got {type(value).__name__}"
    steps = list(value)
    if not steps:
        return None, "the solution has no steps"
    if len(steps) > MAX_GIVEN_STEPS:
        return None, f"{len(steps)} steps (at most {MAX_GIVEN_STEPS})"
    out = []
    for i, step in enumerate(steps):
        if not isinstance(step, str) or not step.strip():
            return None, f"step {i} is empty or not text: {str(step)[:40]!r}"
        out.append(step)
    if sum(len(x) for x in out) > MAX_GIVEN_SOLUTION_CHARS:
        return None, f"the solution is longer than {MAX_GIVEN_SOLUTION_CHARS} characters"
    return tuple(out), None


def given_text(value: Any) -> tuple[str | None, str | None]:
    if value is None or not str(value).strip():
        return None, "empty or missing solution"
    text = str(value)
    if len(text) > MAX_GIVEN_SOLUTION_CHARS:
        return None, f"the solution is longer than {MAX_GIVEN_SOLUTION_CHARS} characters"
    return text, None


def gold_answer(value: Any, layout: str) -> str | None:
    """The final answer alone from a plain answer, a GSM8K solution or a MATH solution."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if layout == "auto":
        layout = "gsm8k" if "####" in text else "boxed" if ("\\boxed" in text or "\\fbox" in text) else "plain"
        if layout == "plain" and (announced := announced_answer(text)) is not None:
            return announced  # a worked solution that ends "The final answer is ..."
    if layout == "gsm8k":
        m = _GSM8K_ANSWER.search(text)
        if m is None:
            return None
        return m.group(1).replace(",", "").strip() or None
    if layout == "boxed":
        return boxed_gold(text)
    return text


def boxed_gold(text: str) -> str | None:
    """The boxed answer of a gold solution. Boxes that repeat one value (`\\boxed{2}` twice,
    `15\\frac{39}{40}` then `\\frac{639}{40}`) are that value, as the last box writes it; boxes
    of different values side by side, or joined by a comma or an "and" (`\\boxed{1} papers and
    \\boxed{2} bins`), are a list of them; otherwise the last box is the answer."""
    spans = [span for span in boxed_spans(text) if span[2]]
    if len(spans) < 2:
        return last_boxed(text)
    distinct: dict[object, str] = {}
    for _, _, box in spans:
        form = normalize(box)
        value = parse_rational(form)
        distinct.setdefault(form if value is None else value, box)
    if len(distinct) == 1:
        return last_boxed(text)
    joined = all(
        len(between) <= _LIST_JOINER_CHARS
        and ("," in between or _AND.search(between) or not re.search(r"[A-Za-z]", between))
        for between in (text[end:start] for (_, end, _), (start, _, _) in zip(spans, spans[1:]))
    )
    return ", ".join(distinct.values()) if joined else last_boxed(text)


_AND = re.compile(r"\band\b")
_LIST_JOINER_CHARS = 40


def _resolve_local(path: str) -> Path | None:
    p = Path(path).expanduser()
    return p if p.exists() else None


def load_rows(spec: DatasetSpec):  # -> datasets.Dataset
    """The rows `spec` names (a Hub dataset or a local file), with errors that name the path."""
    import datasets

    local = _resolve_local(spec.path)
    try:
        if local is not None and local.is_file():
            builder = _LOCAL_BUILDERS.get(local.suffix.lower())
            if builder is None:
                raise DatasetError(
                    f"dataset file {spec.path!r} has an unsupported extension; use one of "
                    f"{', '.join(sorted(_LOCAL_BUILDERS))}"
                )
            return datasets.load_dataset(builder, data_files=str(local), split="train")
        if local is None and (spec.path.startswith((".", "/", "~")) or Path(spec.path).suffix in _LOCAL_BUILDERS):
            raise DatasetError(f"dataset file {spec.path!r} not found (working directory {Path.cwd()})")
        return datasets.load_dataset(
            str(local) if local else spec.path,
            spec.name,
            split=spec.split,
            data_files=spec.data_files,
            revision=spec.revision,
        )
    except DatasetError:
        raise
    except Exception as e:  # datasets raises many types; the user needs the path and the cause
        raise DatasetError(f"could not load dataset {spec.path!r} (split {spec.split!r}): {e}") from e


def load_problems(
    spec: DatasetSpec,
    *,
    exclude: list[DatasetSpec] | None = None,
    generated: Callable[[], list[Problem]] | None = None,
) -> LoadReport:
    """Load, map, extract, hash and dedup. Bad rows are reported with their row number, not fatal.
    `dataset.path: simulated` has no rows: its questions come from `generated` (a simulated world's,
    `apsgen.worlds.problems_for`, given by the caller)."""
    if spec.path == "simulated":
        if generated is None:
            raise DatasetError("dataset.path 'simulated' is generated by a simulated world: run it with "
                               "policy.backend: simulated")
        problems = generated()
        return LoadReport(problems=problems, source="simulated", n_rows=len(problems))

    ds = load_rows(spec)
    columns = list(ds.column_names)
    roles = [("question", spec.question_column), ("answer", spec.answer_column)]
    if spec.steps_column is not None:
        roles.append(("steps", spec.steps_column))
    if spec.solution_column is not None:
        roles.append(("solution", spec.solution_column))
    for role, col in roles:
        if col not in columns:
            raise DatasetError(
                f"{role} column {col!r} not found in {spec.path}; columns are: {', '.join(columns)} "
                f"(set dataset.{role}_column)"
            )
    if spec.shuffle:
        ds = ds.shuffle(seed=spec.seed)
    if spec.limit is not None:
        ds = ds.select(range(min(spec.limit, len(ds))))

    excluded = _excluded_questions(exclude or [])
    report = LoadReport(problems=[], source=spec.path, n_rows=len(ds))
    seen: set[str] = set()
    label = Path(spec.path).stem if _resolve_local(spec.path) else spec.path
    for row_no, row in enumerate(ds.select_columns([c for _, c in roles])):
        question = row[spec.question_column]
        question = str(question).strip() if question is not None else ""
        if not question:
            report.bad_rows.append(BadRow(row_no, f"empty or missing question ({spec.question_column!r})"))
            continue
        raw_answer = row[spec.answer_column]
        if raw_answer is None or not str(raw_answer).strip():
            report.bad_rows.append(BadRow(row_no, f"empty or missing answer ({spec.answer_column!r})"))
            continue
        answer = gold_answer(raw_answer, spec.answer_format)
        if not answer:
            report.bad_rows.append(
                BadRow(row_no, f"no {spec.answer_format} answer in {spec.answer_column!r}: "
                       f"{str(row[spec.answer_column])[:80]!r}")
            )
            continue
        if normalise_text(question) in excluded:
            report.n_excluded += 1
            continue
        steps: tuple[str, ...] | None = None
        solution: str | None = None
        if spec.steps_column is not None:
            steps, why = given_steps(row[spec.steps_column])
            if steps is None:
                report.bad_rows.append(BadRow(row_no, f"{spec.steps_column!r}: {why}"))
                continue
        if spec.solution_column is not None:
            solution, why = given_text(row[spec.solution_column])
            if solution is None:
                report.bad_rows.append(BadRow(row_no, f"{spec.solution_column!r}: {why}"))
                continue
        given = join_steps(steps)[0] if steps is not None else solution
        pid = problem_id(question, answer, given)
        if pid in seen:
            report.n_duplicates += 1
            continue
        seen.add(pid)
        report.problems.append(
            Problem(id=pid, question=question, answer=answer, dataset=label, row=row_no, steps=steps, solution=solution)
        )
    for bad in report.bad_rows[:20]:
        log.warning("%s row %d skipped: %s", spec.path, bad.row, bad.reason)
    if len(report.bad_rows) > 20:
        log.warning("%s: %d more bad rows not shown", spec.path, len(report.bad_rows) - 20)
    return report


def _excluded_questions(specs: list[DatasetSpec]) -> set[str]:
    out: set[str] = set()
    for s in specs:
        ds = load_rows(s)
        if s.question_column not in ds.column_names:
            raise DatasetError(
                f"exclude: question column {s.question_column!r} not found in {s.path}; "
                f"columns are: {', '.join(ds.column_names)}"
            )
        out.update(normalise_text(str(q)) for q in ds[s.question_column] if q)
    return out
