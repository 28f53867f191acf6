"""What an audit says: first-error precision with a 95% Wilson interval, split by kind (too late:
an earlier step was already wrong; too early: the located step is fine) and by located step, the
all-correct paths' precision, the LLM judge's agreement with the auditors, and the agreement of
two auditors who read the same paths (raw and Cohen's kappa).

Every auditor's answers count (two auditors reading one path count twice); skips count for none.
Only verdicts on the output's current state (its digest) are counted; verdicts on an earlier state
are reported as such, never mixed in.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any

from apsgen.audit.record import AuditLog, Reading, latest
from apsgen.audit.sample import ALL_CORRECT, FIRST_ERROR, output_digest
from apsgen.io.store import OutputStore

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of k successes in n trials ((0, 1) when n is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denom = 1 + z * z / n
    lo = 0.0 if k == 0 else max(0.0, (centre - half) / denom)
    hi = 1.0 if k == n else min(1.0, (centre + half) / denom)
    return lo, hi


@dataclass
class Share:
    right: int = 0
    read: int = 0

    @property
    def precision(self) -> float | None:
        return self.right / self.read if self.read else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.right, self.read)

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.interval
        return {"right": self.right, "read": self.read, "precision": self.precision,
                "low": round(lo, 4), "high": round(hi, 4)}


@dataclass
class PairAgreement:
    auditors: tuple[str, str]
    both: int  # paths both answered (skips left out)
    agree: int
    kappa: float | None


@dataclass
class AuditReport:
    output: str
    digest: str  # the state of the output the counted verdicts are on
    current: bool  # that state is the output as it is now
    auditors: dict[str, int] = field(default_factory=dict)  # auditor -> verdicts counted (skips included)
    first_errors: Share = field(default_factory=Share)
    too_late: int = 0  # an earlier step already wrong
    too_early: int = 0  # the located step is fine
    by_step: dict[int, Share] = field(default_factory=dict)  # located step (1-based, as shown) -> share
    all_correct: Share = field(default_factory=Share)
    skipped: int = 0
    judge: Share = field(default_factory=Share)  # right = the judge read the path as the auditor did
    pairs: list[PairAgreement] = field(default_factory=list)
    other_states: dict[str, int] = field(default_factory=dict)  # digest -> verdicts not counted
    last_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["first_errors"] = self.first_errors.to_dict()
        d["all_correct"] = self.all_correct.to_dict()
        d["judge"] = self.judge.to_dict()
        d["by_step"] = {str(k): v.to_dict() for k, v in sorted(self.by_step.items())}
        return d

    def summary(self) -> dict[str, Any]:
        """The figure the stats, the HTML report and the card show."""
        fe, ac = self.first_errors.to_dict(), self.all_correct.to_dict()
        return {
            "precision": fe["precision"], "low": fe["low"], "high": fe["high"], "read": fe["read"],
            "right": fe["right"], "all_correct_precision": ac["precision"], "all_correct_read": ac["read"],
            "auditors": sorted(self.auditors), "date": self.last_at[:10], "current": self.current,
            "digest": self.digest,
        }

    def render(self) -> str:
        def share(s: Share) -> str:
            if not s.read:
                return "none read"
            lo, hi = s.interval
            return f"{s.right} right of {s.read} read: precision {s.precision:.3f} (95% Wilson {lo:.3f}-{hi:.3f})"

        who = ", ".join(f"{a} {n}" for a, n in sorted(self.auditors.items()))
        state = "the current output" if self.current else "an EARLIER state of this output (it has changed since)"
        lines = [
            f"audit of {self.output}: {state}, digest {self.digest}; auditors: {who}; last verdict {self.last_at}",
            f"  first errors  {share(self.first_errors)}",
            f"    too late (an earlier step already wrong) {self.too_late}; too early (the located step is fine) {self.too_early}",
            "    by located step: " + (", ".join(f"{k}: {v.right}/{v.read}" for k, v in sorted(self.by_step.items())) or "none"),
            f"  all-correct   {share(self.all_correct)}",
            f"  skipped       {self.skipped}",
        ]
        if self.judge.read:
            lines.append(f"  judge         reads {self.judge.right} of {self.judge.read} audited paths as the auditor did "
                         f"({self.judge.precision:.3f})")
        for p in self.pairs:
            kappa = "n/a" if p.kappa is None else f"{p.kappa:.3f}"
            lines.append(f"  agreement     {p.auditors[0]} and {p.auditors[1]} both answered {p.both} paths: "
                         f"same answer on {p.agree}, Cohen's kappa {kappa}")
        for digest, n in sorted(self.other_states.items()):
            lines.append(f"  not counted   {n} verdicts on another state of the output (digest {digest})")
        return "\n".join(lines)


def _judge_agrees(v: Reading) -> bool | None:
    j = v.shown.get("judge_first_error")
    if j is None or v.answer == "skip":
        return None
    truth = v.true_first_error
    if truth is not None:
        return j == truth
    # `fine`: the first wrong step is later than the located one, or there is none.
    return j < 0 or (v.labelled_step is not None and j > v.labelled_step)


def _category(v: Reading) -> str:
    return f"earlier:{v.wrong_step}" if v.answer == "earlier" else v.answer


def _kappa(a: list[str], b: list[str]) -> float | None:
    n = len(a)
    if not n:
        return None
    po = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[c] * cb[c] for c in ca) / (n * n)
    return None if pe == 1 else (po - pe) / (1 - pe)


def build_report(output: str, verdicts: list[Reading] | None = None, digest: str | None = None) -> AuditReport | None:
    """The report of the verdicts on the output's current state, or on its latest earlier state
    when none are on the current one; None when nobody has audited the output."""
    verdicts = AuditLog(output).read_all() if verdicts is None else verdicts
    if not verdicts:
        return None
    now = digest or output_digest(OutputStore(output))
    by_digest: dict[str, list[Reading]] = {}
    for v in verdicts:
        by_digest.setdefault(v.output_digest, []).append(v)
    chosen = now if now in by_digest else max(by_digest, key=lambda d: max(v.at for v in by_digest[d]))
    report = AuditReport(output=output, digest=chosen, current=chosen == now,
                         other_states={d: len(vs) for d, vs in by_digest.items() if d != chosen})
    answers = latest(by_digest[chosen])
    report.last_at = max(v.at for v in answers.values())
    for v in answers.values():
        report.auditors[v.auditor] = report.auditors.get(v.auditor, 0) + 1
        if v.answer == "skip":
            report.skipped += 1
            continue
        if v.kind == FIRST_ERROR:
            right = v.answer == "right"
            report.first_errors.read += 1
            report.first_errors.right += right
            report.too_late += v.answer == "earlier"
            report.too_early += v.answer == "fine"
            step = report.by_step.setdefault((v.labelled_step or 0) + 1, Share())
            step.read += 1
            step.right += right
        elif v.kind == ALL_CORRECT:
            report.all_correct.read += 1
            report.all_correct.right += v.answer == "right"
        agrees = _judge_agrees(v)
        if agrees is not None:
            report.judge.read += 1
            report.judge.right += agrees
    per_auditor: dict[str, dict[str, Reading]] = {}
    for (auditor, pid), v in answers.items():
        if v.answer != "skip":
            per_auditor.setdefault(auditor, {})[pid] = v
    for a, b in combinations(sorted(per_auditor), 2):
        both = sorted(set(per_auditor[a]) & set(per_auditor[b]))
        ca = [_category(per_auditor[a][p]) for p in both]
        cb = [_category(per_auditor[b][p]) for p in both]
        report.pairs.append(PairAgreement((a, b), len(both), sum(x == y for x, y in zip(ca, cb, strict=True)), _kappa(ca, cb)))
    return report


def audit_summary(output: str) -> dict[str, Any] | None:
    """The audited figure of an output (see AuditReport.summary), None when it was never audited."""
    report = build_report(output)
    return report.summary() if report else None


def summary_sentence(summary: dict[str, Any] | None, output: str = "OUT_DIR") -> str:
    """One line for the stats, the report and the card."""
    if not summary:
        return f"not audited: nobody has checked these labels by reading them (`apsgen audit {output}`)"
    if not summary["read"]:
        head = "no located first error read yet"
    else:
        head = (f"first-error precision {summary['precision']:.2f} (95% CI {summary['low']:.2f}-{summary['high']:.2f}) "
                f"on {summary['read']} located first errors read")
    tail = (f"; all-correct paths {summary['all_correct_precision']:.2f} on {summary['all_correct_read']}"
            if summary["all_correct_read"] else "")
    who = ", ".join(summary["auditors"])
    when = "" if summary["current"] else "; on an earlier state of this output, which has changed since"
    return f"{head}{tail}; read by hand by {who} on {summary['date']}{when}"


def attach_audit(stats: Any, output: str) -> Any:
    """Put the audited figure (or "not audited") on a DatasetStats for its text, HTML and card."""
    stats.audit = audit_summary(output)
    stats.audit_line = summary_sentence(stats.audit, output)
    return stats
