"""What a search returns: per annotated state the label facts, per problem the cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from apsgen.label.probes import LocatedProbe, OwnRecovery

SkipReason = Literal["all_correct", "all_wrong", "no_answers", "only_invalid_failures"]
LabelSource = Literal["rollouts", "screening", "wrong_solution", "correct_solution", "unestimated"]


@dataclass
class StepLabel:
    """One annotated state: the solution prefix that ends with `step_text`, and its MC value.

    `prefix + step_text` is the state's full solution prefix; offsets index into it.
    """

    node_id: int
    parent_id: int | None  # None when the parent is the root (empty prefix)
    prefix: str
    step_text: str
    step_index: int  # 0-based position of the step along its path
    char_start: int
    char_end: int
    mc_value: float | None  # None: not estimated (n_rollouts 0), or every rollout excluded
    n_correct: int
    n_rollouts: int
    n_truncated: int = 0
    n_unparseable: int = 0
    n_timeouts: int = 0
    n_correct_flawed: int = 0  # of n_correct, right answers through a step that shows an error by its text
    is_first_error: bool = False
    label_source: LabelSource = "rollouts"
    verdict: str = "undecided"  # the label rule's: correct | wrong | undecided
    verdict_basis: str = "rollouts"  # rollouts | arithmetic | retraction | restatement (apsgen.label.text)
    reference_value: float | None = None  # what the rule judged the evidence against
    label_score: float | None = None  # the rule's statistic on that evidence (sequential: its log-likelihood ratio)
    parent_mc: float | None = None  # MC of the parent state (the root's for a first step), if estimated
    # Set on the last state of each path the judge read (see apsgen.judge): its first wrong step
    # along that path (0-based; -1: none) and whether it agrees with the located one.
    judge_first_error: int | None = None
    judge_outcome: str | None = None  # agree | disagree | unparseable
    # A reasoning policy's step: "thinking" or "answer" (None for other policies).
    section: str | None = None
    # A reflection that retracts a located first error: that error's node id, and the rule's verdict
    # on this state's own rollouts (correct: the trace is back on track; see search.reflections).
    reflects_on: int | None = None
    reflection_verdict: str | None = None


@dataclass(frozen=True)
class KeptRollout:
    """One sampled completion as the search drew it, kept when the job asks (`runner.keep_rollouts`):
    a row of the rollouts table (schemas/rollouts.schema.json)."""

    rollout_id: int
    node_id: int  # the state it continued
    prefix: str
    text: str
    finish_reason: str  # stop | length
    answer: str | None  # the verifier's extracted answer
    outcome: str
    flawed: bool
    n_tokens: int
    # A reasoning policy's completion: offset in `text` where its final answer begins (after the
    # thinking section's end), None while it is still thinking; None for every other policy.
    answer_start: int | None = None


@dataclass
class ProblemResult:
    problem_id: str
    status: Literal["searched", "skipped", "failed"]
    skip_reason: SkipReason | None = None
    mode: str = "omegaprm"
    step_mode: str = "delimiter"
    root_mc: float | None = None
    root_mc_source: Literal["screening", "fresh"] | None = None
    steps: list[StepLabel] = field(default_factory=list)
    n_searches: int = 0
    n_policy_calls: int = 0
    n_rollouts: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # verifier outcome name -> count, over every rollout
    elapsed_s: float = 0.0
    # Added by the search: how the question was screened and searched.
    screen_samples: int = 0
    screen_correct: int = 0
    root_n_correct: int = 0
    root_n_rollouts: int = 0
    chunk_tokens: int | None = None  # step size in tokens mode, from the screening samples' mean length
    n_first_errors: int = 0  # states labelled is_first_error
    n_undecided_searches: int = 0  # searches the label rule ended without a label
    # omegaprm / per_step_mc: max_searches, rollout_budget, empty_pool, done, error;
    # annotate: located, no_error, undecided, rollout_budget, done (skipped), error
    stop_reason: str | None = None
    label_rule: str = ""  # the rule and its parameters, JSON
    searches_from_root: int = 0  # searches whose rollout started at the root (the rest: from the pool)
    first_error_origin: dict[int, str] = field(default_factory=dict)  # node id -> "root" | "pool" (not stored)
    # What the question showed of its own recovery before its search (an input of every verdict,
    # stored for replay), and, where a search was asked for them (`search.located_probes`: the
    # calibration's fallback, not stored), fresh rollouts at located first errors.
    own_recovery: OwnRecovery | None = None
    # Sequential rule: the chance a right answer came through a wrong step, and the root value it
    # was computed from (apsgen.label.rule.allgood_risk): whether right answers became all-good paths.
    allgood: dict[str, float | None] | None = None
    located_probes: list[LocatedProbe] = field(default_factory=list)
    error: str | None = None  # why a failed search stopped (its labels so far are kept)
    solution_source: str = "sampled"  # sampled by the policy, or given by the dataset (annotate mode)
    solution_outcome: str | None = None  # annotate mode: the verifier's outcome for the given solution
    n_judged_paths: int = 0  # paths the judge read (judge: set)
    n_consensus_paths: int = 0  # of those, where its first wrong step is the located one
    n_judge_unparseable: int = 0  # of those, replies with no verdict in them
    # Every completion the search drew, in order, when the job keeps them (None: not kept).
    rollouts: list[KeptRollout] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def n_positive(self) -> int:
        """Steps the label rule found correct."""
        return sum(1 for s in self.steps if s.verdict == "correct")

    @property
    def n_negative(self) -> int:
        """Steps the label rule found wrong."""
        return sum(1 for s in self.steps if s.verdict == "wrong")

    @property
    def n_undecided(self) -> int:
        """Estimated steps the label rule left undecided (states nobody estimated are not counted)."""
        return sum(1 for s in self.steps if s.verdict == "undecided" and s.label_source != "unestimated")

    @property
    def n_estimated(self) -> int:
        """Stored states that carry an estimate or a solution's own verdict."""
        return sum(1 for s in self.steps if s.label_source != "unestimated")
