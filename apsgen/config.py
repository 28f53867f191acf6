"""The job spec: a typed, validated model of `jobs/*.yaml`.

The settings that shape labels have a section each: `search` (the tree search: OmegaPRM's
parameters, the paper's defaults), `steps` (how solutions split, whether a step's text is read),
`label` (the rule, a tagged union: `sequential`, the default, `threshold` or `paper`, each with its
own parameters) and `calibration`; `Labelling` bundles them for the search. An older spec that kept
them all under `search` is migrated with a warning naming each moved key. Reads YAML and applies
`--set a.b=value` overrides; does no other I/O.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


log = logging.getLogger(__name__)


# A reasoning policy's default budget: long traces (thousands of tokens of thinking) must end.
REASONING_MAX_TOKENS = 16384


class SpecError(ValueError):
    """A job spec that cannot be used; the message names the file, the key and the value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DatasetSpec(_Strict):
    """Where problems come from and how their columns map onto (question, answer)."""

    path: str = Field(description="A Hub dataset name, or a local .jsonl/.json/.parquet/.csv file or folder.")
    name: str | None = Field(None, description="Hub dataset config name.")
    split: str = "train"
    data_files: str | list[str] | None = None
    revision: str | None = None
    question_column: str = "question"
    answer_column: str = "answer"
    answer_format: Literal["auto", "plain", "gsm8k", "boxed"] = Field(
        "auto",
        description="How the gold answer is written: a bare answer, a GSM8K solution ending in "
        "'#### 42', a MATH solution with \\boxed{...}, or auto (detect per row; a worked solution that ends "
        "'The final answer is ...' gives that answer).",
    )
    steps_column: str | None = Field(
        None,
        description="search.mode annotate: a column holding each row's solution as a list of steps to label.",
    )
    solution_column: str | None = Field(
        None,
        description="search.mode annotate: a column holding each row's solution as text, split into steps by "
        "the job's step rule (steps).",
    )
    limit: int | None = Field(None, ge=1)
    shuffle: bool = False
    seed: int = 0

    @model_validator(mode="after")
    def _one_solution_column(self) -> DatasetSpec:
        if self.steps_column is not None and self.solution_column is not None:
            raise ValueError(
                f"dataset: give steps_column ({self.steps_column!r}) or solution_column "
                f"({self.solution_column!r}), not both"
            )
        return self

    @property
    def solution_source(self) -> str | None:
        return self.steps_column or self.solution_column


class PromptSpec(_Strict):
    """How a question and a solution prefix become the model's input."""

    system: str = (
        "Solve the math problem step by step. Separate steps with a blank line. "
        "Put the final answer in \\boxed{}."
    )
    few_shot: list[tuple[str, str]] = Field(
        default_factory=list, description="(question, solution) pairs shown before the question."
    )
    use_chat_template: bool = True
    chat_template_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra variables for the chat template, e.g. {enable_thinking: true} (Qwen3's thinking switch); "
        "`reasoning.enabled` sets enable_thinking: true unless it is given here.",
    )


class EngineSpec(_Strict):
    """vLLM engine arguments, passed through."""

    dtype: str = "auto"
    max_model_len: int | None = 4096
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    tensor_parallel_size: int = Field(1, ge=1)
    enforce_eager: bool = False
    enable_prefix_caching: bool = True
    seed: int = 0
    extra: dict[str, Any] = Field(default_factory=dict, description="Any other vLLM engine argument.")


class OpenAISpec(_Strict):
    base_url: str = "http://127.0.0.1:8000/v1"
    base_urls: list[str] = Field(
        default_factory=list,
        description="A fleet: several servers of the same model (used instead of base_url). Each search tree "
        "sticks to one server, so its prefixes stay in that server's cache; new trees go to the server with "
        "the fewest requests in flight; a server that stops answering is taken out and its trees move.",
    )
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = Field(32, ge=1, description="Requests in flight per server.")
    max_retries: int = Field(5, ge=0, description="Retries per request on one server (a fleet fails over after 2).")
    timeout_s: float = Field(600, gt=0)
    retry_down_after_s: float = Field(
        60, gt=0, description="A fleet server taken out is tried again after this many seconds."
    )

    @property
    def urls(self) -> list[str]:
        return [u.rstrip("/") for u in (self.base_urls or [self.base_url])]


class SimulatedSpec(_Strict):
    """The simulated policy (tests, benchmarks, trying the pipeline without a model).

    A problem is a chain of arithmetic steps with planted errors; the knobs below make it behave
    like a real, imperfect policy so that an estimator can be judged against the planted truth.
    """

    min_steps: int = Field(4, ge=1, description="Fewest steps in a problem.")
    max_steps: int = Field(16, ge=1, description="Most steps in a problem.")
    error_rate: tuple[float, float] = Field(
        (0.02, 0.15), description="Per-step error probability range (each problem draws one rate from it)."
    )
    recover_rate: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Chance that a solution that went wrong still reaches the right final answer: it jumps back "
        "to the right value at a step drawn uniformly from the ones left (any number of steps later).",
    )
    hard_step_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of steps that are hard for this policy: from the correct prefix just before a hard "
        "step, the chance of finishing right drops sharply (a weak policy's false negatives).",
    )
    hard_step_error: float = Field(
        0.6, ge=0, le=1, description="Error probability at a hard step (instead of the problem's per-step rate)."
    )
    unparseable_rate: float = Field(
        0.0, ge=0, le=1, description="Chance that a completion ends without an extractable final answer."
    )
    truncate_rate: float = Field(
        0.0, ge=0, le=1, description="Chance that a completion is cut off mid-way (reported as truncated)."
    )
    empty_rate: float = Field(0.0, ge=0, le=1, description="Chance that a completion is empty.")
    blank_start_rate: float = Field(
        0.0, ge=0, le=1, description="Chance that a completion starts with a blank line before its first step."
    )
    tokens_per_step: int = Field(30, ge=1, description="Words per step (a token is a word here).")
    latency_s: float = Field(0.0, ge=0, description="Seconds each request waits, to mimic an engine.")
    success_rate: tuple[float, float] | None = Field(
        None,
        description="If set, each problem draws its chance of a fully correct solution from this range "
        "and its per-step error rate follows (1 - s^(1/steps)), overriding error_rate (hard steps come on top).",
    )


class PolicySpec(_Strict):
    backend: Literal["vllm", "openai", "simulated"] = "vllm"
    model: str = Field("smollm2-135m", description="A model folder, a Hub id, or a name `apsgen models` knows.")
    revision: str | None = None
    prompt: PromptSpec = Field(default_factory=PromptSpec)
    engine: EngineSpec = Field(default_factory=EngineSpec)
    openai: OpenAISpec = Field(default_factory=OpenAISpec)
    simulated: SimulatedSpec = Field(default_factory=SimulatedSpec)


class SamplingSpec(_Strict):
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(1024, ge=1)
    stop: list[str] = Field(default_factory=list)


class SearchSpec(_Strict):
    """The tree search: OmegaPRM's parameters are those of Luo et al. 2024 (arXiv 2406.06592);
    `skip_located` and `refill_pool` are apsgen's and on by default (the paper's search has
    neither: `apsgen bench search` measures both); `correct_paths` and `located_probes` say what
    the search keeps and probes."""

    mode: Literal["omegaprm", "per_step_mc", "annotate"] = Field(
        "omegaprm",
        description="omegaprm: sample solutions and search them (Luo et al. 2024); per_step_mc: estimate every "
        "step of the sampled wrong solutions (Math-Shepherd); annotate: label the solutions the dataset gives "
        "(dataset.steps_column or solution_column) with the policy as the completer.",
    )
    annotate: Literal["binary", "per_step"] = Field(
        "binary",
        description="annotate mode: a binary search for the first wrong step with the label rule, or every step's "
        "MC in order (Math-Shepherd's way).",
    )
    alpha: float = Field(0.5, gt=0, le=1)
    beta: float = Field(0.9, gt=0, le=1)
    length_scale: int = Field(500, ge=1, description="L: rollout length (tokens) that scales the beta term.")
    c_puct: float = Field(0.125, ge=0)
    k: int = Field(8, ge=1, description="Rollouts per Monte Carlo estimate (one request with n=k).")
    max_searches: int = Field(100, ge=1, description="Selections (binary searches) per question.")
    screen_samples: int = Field(32, ge=1, description="Full solutions sampled to screen a question.")
    rollout_budget: int | None = Field(None, ge=1, description="Stop a question after this many rollouts.")
    skip_located: bool = Field(
        True,
        description="A selected wrong rollout whose path runs through a first error already located is not "
        "searched (its search could only find that one again) and not counted against max_searches.",
    )
    refill_pool: bool = Field(
        True,
        description="When the pool runs dry before max_searches, draw k fresh solutions of the question and "
        "search their wrong ones; the question stops when the pool runs dry again and the searches since the last "
        "draw located no new first error.",
    )
    root_from_screening: bool = Field(True, description="Use screening samples as the root's MC estimate.")
    correct_paths: int = Field(
        4,
        ge=0,
        description="Correct sampled solutions stored per question as step paths (all steps good), beside the "
        "located errors (OmegaPRM's rows).",
    )
    located_probes: int = Field(
        0,
        ge=0,
        description="After the search, give this many of its located first errors (with room to recover after "
        "them) and the correct prefix before each k fresh rollouts, where the question has no own-recovery probes. "
        "The calibration stage sets it; a job has no use for it.",
    )
    pool_max_per_state: int = Field(
        16,
        ge=1,
        description="Wrong rollouts one non-root state may put in the pool: a state that is wrong after all "
        "cannot fill the pool with searches for an error that lies before it.",
    )
    invalid_rollouts: Literal["wrong", "exclude"] = Field(
        "wrong", description="Truncated or unparseable rollouts count as wrong, or leave the MC denominator."
    )


class StepsSpec(_Strict):
    """How a solution is split into steps, and whether a step's own text is read before rollouts."""

    mode: Literal["delimiter", "tokens", "sections"] = Field(
        "delimiter", description="delimiter: steps are the text between `delimiter` matches; tokens: chunks of "
        "mean solution length / per_solution tokens (the paper's); sections (for long reasoning traces, the default "
        "with `reasoning.enabled`): `delimiter` paragraphs merged until a section holds mean solution length / "
        "per_solution tokens, a new one begun at a reflection ('Wait, ...') and at the end of the thinking section.")
    delimiter: str = Field(r"\n\s*\n", description="Regex between steps (delimiter mode) or paragraphs (sections mode).")
    per_solution: int = Field(16, ge=1, description="tokens and sections mode: about this many steps per solution "
                              "(a step is mean solution length / this, measured on the screening samples).")
    checks: bool = Field(
        True,
        description="Read each step's own text before asking rollouts: a step stating a false equation between "
        "plain numbers ('50 - 18 = 12') or retracting an earlier one is wrong with certainty, so is every prefix "
        "through it, and a correct answer reached through it is no all-good path; a step that only restates the "
        "question's facts cannot be a first error (apsgen.label.text; measured by `apsgen bench checks`).",
    )

    @field_validator("delimiter")
    @classmethod
    def _regex_compiles(cls, v: str) -> str:
        import re

        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"steps.delimiter {v!r} is not a valid regex: {e}") from e
        return v


class ReasoningSpec(_Strict):
    """A reasoning policy (Qwen3 thinking, DeepSeek-R1 distills, QwQ): a solution is a thinking
    section, closed by `thinking_end`, then the final answer. See docs/reasoning.md."""

    enabled: bool = Field(False, description="The policy writes a thinking section before its answer.")
    thinking_end: str = Field(
        "</think>", min_length=1,
        description="The text that closes the thinking section. The answer is read only after its last occurrence "
        "(a completion without it has no answer: truncated when cut by max_tokens), and it always ends a step.")
    reflections: bool = Field(
        True, description="After a first error is located, find the later step that retracts it ('Wait, that's "
        "wrong ...') and judge from k rollouts whether the trace is back on track after it; rows record it "
        "(`reflects_on`, `reflection_verdict`) and `apsgen export --convention corrected` keeps the corrected span.")


class SequentialLabelSpec(_Strict):
    """The sequential rule (the default): a sequential probability ratio test per prefix, against the
    job's calibrated recovery distribution and each question's own recovery (docs/labels.md)."""

    rule: Literal["sequential"] = "sequential"

    k_max: int = Field(
        32,
        ge=1,
        description="sequential rule: most rollouts one prefix may get (k first, then top-ups of k/4 to k, "
        "one request each).",
    )
    correct_ratio: float = Field(
        0.6,
        gt=0,
        le=1,
        description="sequential rule: a correct prefix succeeds at least this fraction of the reference value "
        "(a correct prefix's expected value at its depth).",
    )
    recovery_margin: float = Field(
        1.5,
        ge=1,
        description="sequential rule: a wrong prefix is assumed to succeed at this multiple of the calibrated "
        "mean recovery rate (the test then calls a prefix correct only on clearly more successes than recovery gives).",
    )
    false_correct_rate: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description="sequential rule: the error rate at which a wrong prefix may be called correct (a first "
        "error located too late).",
    )
    false_wrong_rate: float = Field(
        0.1,
        gt=0,
        lt=0.5,
        description="sequential rule: the error rate at which a correct prefix may be called wrong (a first "
        "error located too early).",
    )
    pool_evidence: float = Field(
        1.25,
        ge=1,
        description="sequential rule: a non-root state's wrong rollouts join the pool only with this many times "
        "the evidence a 'correct' verdict needs (searches started there inherit any doubt about it).",
    )
    own_recovery_probes: int = Field(
        4,
        ge=0,
        description="sequential rule with step checks: before its search, each question's first screening "
        "solutions that state a false equation give that wrong prefix k fresh rollouts (at most this many "
        "prefixes); how often they still end right is the question's own recovery, judged with the job's "
        "calibration as its prior. 0: every question is judged by the calibration alone.",
    )
    planted_probes: int = Field(
        8,
        ge=0,
        description="sequential rule with step checks: where a question's screening shows fewer than "
        "own_recovery_probes prefixes wrong by a false equation, make more wrong on purpose from its own right "
        "solutions (a misread number, the equation kept true: apsgen.label.text.planting), to this many probes in "
        "all, each given k fresh rollouts: the question's recovery measured where its text shows nothing. "
        "0: only the prefixes the policy itself got wrong visibly.",
    )
    verify_right_answers: bool = Field(
        True,
        description="where a right answer may well have come through a wrong step (the all-good risk above "
        "the rule's limit), store a right-answer solution as an all-good path only after every prefix before "
        "its last step is decided correct, and search a prefix decided wrong as a hidden first error. More "
        "positive labels at the same precision for up to about a third more tokens (docs/labels.md). "
        "false: such a question stores no all-good path.",
    )


class ThresholdLabelSpec(_Strict):
    """MC > mc_threshold is correct (a hand-set threshold on the rollouts alone)."""

    rule: Literal["threshold"] = "threshold"

    mc_threshold: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="threshold rule: a prefix counts as still correct when MC > this.",
    )
    pool_min_mc: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="threshold rule: a non-root state's wrong rollouts join the pool only when MC(s) > this "
        "(and > mc_threshold); the root is never floored.",
    )


class PaperLabelSpec(_Strict):
    """Luo et al. 2024: MC > 0 is correct; nothing else bounds the pool."""

    rule: Literal["paper"] = "paper"


LabelSpec = Annotated[SequentialLabelSpec | ThresholdLabelSpec | PaperLabelSpec, Field(discriminator="rule")]


class CalibrationSpec(_Strict):
    """The sequential rule's calibration: the job's recovery distribution, measured on a seeded sample
    of its questions before labelling (`apsgen calibrate`), and the prior kept when it says too little."""

    questions: int = Field(
        32,
        ge=0,
        description="Questions searched to calibrate, at most a quarter of the job (a seeded random sample by "
        "problem id, never by input order); every question is then labelled against it. 0: no calibration, "
        "the prior is used.",
    )
    searches: int = Field(20, ge=1, description="Most searches per calibration question (their labels are not kept).")
    prior: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="The share of a correct prefix's chance of success that a prefix which went wrong keeps (it "
        "recovers, then must still finish right), assumed by the calibration searches and kept when calibration "
        "learns too little.",
    )
    prior_weight: float = Field(
        8.0,
        gt=0,
        description="The concentration of the prior recovery distribution, Beta(prior x w, (1 - prior) x w): how "
        "many rollouts of a prefix it is worth.",
    )


# Keys that moved out of `search` when the label settings got sections of their own: an old job
# file is migrated with a warning naming each (`migrate`), and so is a flat `Labelling.of(...)`.
MOVED: dict[str, str] = {
    "step_mode": "steps.mode", "step_delimiter": "steps.delimiter", "steps_per_solution": "steps.per_solution",
    "step_checks": "steps.checks", "label_rule": "label.rule", "k_max": "label.k_max",
    "correct_ratio": "label.correct_ratio", "recovery_margin": "label.recovery_margin",
    "false_correct_rate": "label.false_correct_rate", "false_wrong_rate": "label.false_wrong_rate",
    "pool_evidence": "label.pool_evidence", "own_recovery_probes": "label.own_recovery_probes",
    "planted_probes": "label.planted_probes", "mc_threshold": "label.mc_threshold", "pool_min_mc": "label.pool_min_mc",
    "recovery_prior": "calibration.prior", "recovery_prior_weight": "calibration.prior_weight",
    "calibration_questions": "calibration.questions", "calibration_searches": "calibration.searches",
}
SECTIONS = ("search", "steps", "label", "calibration")


def migrate(raw: dict[str, Any]) -> list[str]:
    """Move the keys of an older job spec's `search` section to where they live now, in place;
    the moves made, as 'search.k_max -> label.k_max'. A key set in both places is an error."""
    search = raw.get("search")
    moves: list[str] = []
    if not isinstance(search, dict):
        return moves
    for old in [k for k in search if k in MOVED]:
        section, key = MOVED[old].split(".")
        target = raw.setdefault(section, {})
        if not isinstance(target, dict):
            raise SpecError(f"{section!r} is not a section (it is {target!r})")
        if key in target:
            raise SpecError(f"search.{old} moved to {section}.{key}, and both are set: keep {section}.{key}")
        target[key] = search.pop(old)
        moves.append(f"search.{old} -> {section}.{key}")
    return moves


def _default_rule(raw: Any) -> Any:
    """A `label` section without a rule is the sequential rule's (the default)."""
    if isinstance(raw, dict) and "rule" not in raw:
        return {**raw, "rule": "sequential"}
    return raw


class Labelling(_Strict):
    """Every setting that shapes a label: the search, the steps, the rule, the calibration. What the
    search and the label engine take (`JobSpec.labelling()`); the rule's numbers are built from it
    in one place (`apsgen.label.rule.RuleParams.from_settings`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    search: SearchSpec = Field(default_factory=SearchSpec)
    steps: StepsSpec = Field(default_factory=StepsSpec)
    label: LabelSpec = Field(default_factory=SequentialLabelSpec)
    calibration: CalibrationSpec = Field(default_factory=CalibrationSpec)
    reasoning: ReasoningSpec = Field(default_factory=ReasoningSpec)

    @field_validator("label", mode="before")
    @classmethod
    def _rule_default(cls, v: Any) -> Any:
        return _default_rule(v)

    @property
    def thinking_end(self) -> str | None:
        """The marker that closes a thinking section, or None for a policy without one."""
        return self.reasoning.thinking_end if self.reasoning.enabled else None

    @model_validator(mode="after")
    def _k_max_covers_k(self) -> Labelling:
        k_max = getattr(self.label, "k_max", None)
        if k_max is not None and k_max < self.search.k:
            raise ValueError(f"label.k_max {k_max} < search.k {self.search.k}: a prefix gets at least k rollouts")
        return self

    @property
    def sequential(self) -> bool:
        return self.label.rule == "sequential"

    @classmethod
    def of(cls, **flat: Any) -> Labelling:
        """Built from flat keys, each found in its section (`k=4, step_checks=False, k_max=16,
        calibration_questions=0`): the old single `search` section's names, for scripts and tests."""
        raw: dict[str, Any] = {"search": dict(flat)}
        migrate(raw)
        return cls.model_validate(raw)

    def with_search(self, **changes: Any) -> Labelling:
        return self.model_copy(update={"search": self.search.model_copy(update=changes)})


class VerifySpec(_Strict):
    """The answer checker; its policy choices are documented in apsgen/verify/POLICY.md."""

    timeout_s: float = Field(2.0, gt=0, description="Hard limit per symbolic check (the worker is killed past it).")
    workers: int | None = Field(None, ge=1, description="Symbolic-check worker processes (default: 1).")
    last_number_fallback: bool = Field(
        False, description="With no boxed answer, no answer phrase and no closing math block, take the last number."
    )
    trailing_math_answer: bool = Field(
        True,
        description="With no boxed answer and no answer phrase, take the math block the solution ends with "
        "(`Answer \\[ 9 \\]`, `... is $\\frac{5}{6}$.`).",
    )
    closing_sentence_answer: bool = Field(
        True,
        description="With none of those, take the number a concluding last sentence states "
        "(`Therefore, the rope is 20 centimeters.`, `So, Raymond has $8 left.`).",
    )


class RunnerSpec(_Strict):
    num_workers: int = Field(1, ge=1, description="SearchWorker actors, one engine each.")
    max_concurrent_trees: int = Field(64, ge=1, description="Question searches in flight per worker.")
    num_gpus_per_worker: float | None = Field(
        None, ge=0, description="Default: tensor_parallel_size on a GPU cluster, 0 where none is found."
    )
    max_retries: int = Field(3, ge=0, description="Infrastructure retries per problem.")
    shard_rows: int = Field(2000, ge=1, description="Rows per Parquet shard (a shard closes early at run end).")
    keep_rollouts: bool = Field(
        False,
        description="Store every completion the search draws (its text, prefix, answer and outcome) in a "
        "rollouts table beside the steps, for re-grading and relabelling later (docs/datasets.md says what "
        "it costs). Part of the fingerprint: an output keeps all of its rollouts or none.",
    )


class HubSpec(_Strict):
    repo_id: str | None = None
    private: bool = True
    license: str = "apache-2.0"


JUDGE_SYSTEM = (
    "You check math solutions step by step. Find the earliest step that contains an error (a wrong "
    "calculation, a wrong claim, or a step that does not follow). Steps after a wrong step do not matter."
)
JUDGE_TEMPLATE = (
    "Problem:\n{problem}\n\nSolution, split into numbered steps:\n{steps}\n\n"
    "Which step is the first wrong one? Reply with its number in \\boxed{}, for example \\boxed{2}, "
    "or \\boxed{none} if every step is correct."
)


class SimulatedJudgeSpec(_Strict):
    accuracy: float = Field(
        0.9, ge=0, le=1,
        description="Chance the simulated judge names the planted first wrong step (or none) of what it is shown; "
        "otherwise it names another step or none.",
    )
    unparseable_rate: float = Field(0.0, ge=0, le=1, description="Chance its reply has no verdict in it.")


class JudgeSpec(_Strict):
    """A second model that reads each labelled path and names its first wrong step, for the consensus filter
    (Zhang et al. 2025, "The Lessons of Developing Process Reward Models")."""

    backend: Literal["vllm", "openai", "simulated"] = Field(
        "vllm",
        description="vllm: an engine inside each search worker (the policy's own engine when `model` is the "
        "policy's); openai: an OpenAI-compatible server (`openai.base_url`); simulated: tests and benchmarks.",
    )
    model: str | None = Field(None, description="The judge model (default: the policy's model).")
    revision: str | None = None
    system: str = Field(JUDGE_SYSTEM, description="The judge's instruction.")
    template: str = Field(
        JUDGE_TEMPLATE, description="The user message; {problem} and {steps} (numbered 1..n) are replaced (no other braces are special)."
    )
    max_tokens: int = Field(1024, ge=1, description="Tokens the judge may write before its verdict.")
    temperature: float = Field(0.0, ge=0)
    engine: EngineSpec = Field(default_factory=EngineSpec)
    openai: OpenAISpec = Field(default_factory=OpenAISpec)
    simulated: SimulatedJudgeSpec = Field(default_factory=SimulatedJudgeSpec)

    @field_validator("template")
    @classmethod
    def _has_fields(cls, v: str) -> str:
        missing = [f for f in ("{problem}", "{steps}") if f not in v]
        if missing:
            raise ValueError(f"judge.template lacks {', '.join(missing)}")
        return v


class JobSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""
    seed: int = 0
    dataset: DatasetSpec
    exclude: list[DatasetSpec] = Field(
        default_factory=list, description="Datasets whose questions are dropped before search (contamination)."
    )
    policy: PolicySpec = Field(default_factory=PolicySpec)
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    search: SearchSpec = Field(default_factory=SearchSpec)
    steps: StepsSpec = Field(default_factory=StepsSpec)
    label: LabelSpec = Field(default_factory=SequentialLabelSpec)
    calibration: CalibrationSpec = Field(default_factory=CalibrationSpec)
    reasoning: ReasoningSpec = Field(
        default_factory=ReasoningSpec,
        description="A reasoning policy's thinking section (off by default). On, it also changes the defaults of "
        "settings not given: sampling.max_tokens 16384, policy.engine.max_model_len the model's own, steps.mode "
        "sections, policy.prompt.chat_template_kwargs.enable_thinking true.")
    verify: VerifySpec = Field(default_factory=VerifySpec)
    runner: RunnerSpec = Field(default_factory=RunnerSpec)
    hub: HubSpec = Field(default_factory=HubSpec)
    judge: JudgeSpec | None = Field(
        None, description="An LLM judge for the consensus filter (off when absent): rows carry its verdict."
    )
    output: str | None = Field(None, description="Output directory or URI; default out/<name>.")

    @model_validator(mode="after")
    def _reasoning_defaults(self) -> JobSpec:
        """A reasoning policy's defaults, for the settings the spec does not give."""
        if not self.reasoning.enabled:
            return self
        if "max_tokens" not in self.sampling.model_fields_set:
            self.sampling.max_tokens = REASONING_MAX_TOKENS
        engine = self.policy.engine
        if "max_model_len" not in engine.model_fields_set:
            engine.max_model_len = None
        if "mode" not in self.steps.model_fields_set:
            self.steps.mode = "sections"
        self.policy.prompt.chat_template_kwargs.setdefault("enable_thinking", True)
        return self

    @model_validator(mode="after")
    def _steps(self) -> JobSpec:
        sim = self.policy.simulated
        if sim.min_steps > sim.max_steps:
            raise ValueError(f"policy.simulated.min_steps {sim.min_steps} > max_steps {sim.max_steps}")
        self.labelling()  # the sections' joint checks (label.k_max >= search.k)
        given = self.dataset.solution_source
        if self.search.mode == "annotate" and given is None:
            raise ValueError(
                "search.mode annotate labels given solutions: set dataset.steps_column (a list of steps per row) "
                "or dataset.solution_column (the solution text)"
            )
        if self.search.mode != "annotate" and given is not None:
            raise ValueError(
                f"dataset column {given!r} holds solutions to label, which only search.mode annotate reads "
                f"(search.mode is {self.search.mode!r})"
            )
        return self

    @field_validator("label", mode="before")
    @classmethod
    def _rule_default(cls, v: Any) -> Any:
        return _default_rule(v)

    def labelling(self) -> Labelling:
        """The settings that shape a label, as the search and the label engine take them."""
        return Labelling(search=self.search, steps=self.steps, label=self.label, calibration=self.calibration,
                         reasoning=self.reasoning)

    def output_dir(self) -> str:
        return self.output or f"out/{self.name}"


def _coerce_scalar(text: str) -> Any:
    """A `--set` value as YAML reads it (so `k=4` is an int and `x=[1,2]` a list)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SpecError(f"--set {item!r}: expected KEY=VALUE, e.g. --set search.k=4")
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise SpecError(f"--set {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = _coerce_scalar(value)
    return raw


def _describe(err: ValidationError, source: str, raw: dict[str, Any]) -> str:
    lines = [f"invalid job spec {source}:"]
    rules = ("sequential", "threshold", "paper")
    for e in err.errors():
        parts = [str(p) for p in e["loc"]]
        rule = parts[1] if parts[:1] == ["label"] and len(parts) > 2 and parts[1] in rules else None
        if rule is not None:
            parts = [parts[0], *parts[2:]]  # the union's tag is not a key the user wrote
        loc = ".".join(parts) or "(top level)"
        if e["type"] == "extra_forbidden":
            where = f" (not a setting of the {rule} rule)" if rule else ""
            lines.append(f"  unknown key {loc!r} (value {e['input']!r}){where}")
        elif not parts:
            lines.append(f"  {e['msg']}")
        else:
            lines.append(f"  {loc} = {e.get('input')!r}: {e['msg']}")
    return "\n".join(lines)


def parse_spec(raw: dict[str, Any], source: str = "<dict>", overrides: list[str] | None = None) -> JobSpec:
    if not isinstance(raw, dict):
        raise SpecError(f"invalid job spec {source}: expected a mapping at the top level, got {type(raw).__name__}")
    raw = apply_overrides(copy.deepcopy(raw), overrides or [])
    moves = migrate(raw)
    if moves:
        log.warning("job spec %s: settings moved out of `search` (migrated; write them there): %s", source,
                    "; ".join(moves))
    try:
        return JobSpec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(_describe(e, source, raw)) from None


def load_spec(path: str | Path, overrides: list[str] | None = None) -> JobSpec:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"job spec {str(path)!r} not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise SpecError(f"job spec {str(path)!r} is not valid YAML: {e}") from None
    return parse_spec(raw, str(path), overrides)


def job_schema() -> dict[str, Any]:
    return JobSpec.model_json_schema()


def schema_text() -> str:
    return json.dumps(job_schema(), indent=2, sort_keys=True) + "\n"
