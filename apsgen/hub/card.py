"""The dataset card (README.md), generated from the run: metadata, provenance, statistics, spec, and
how to reproduce it, through `huggingface_hub`'s DatasetCard and DatasetCardData with the body in
card_template.md. Built only from the manifest, the statistics and a step row: never a token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import DatasetCard, DatasetCardData

from apsgen import __version__
from apsgen.audit.report import summary_sentence
from apsgen.io.export.formats import FORMATS
from apsgen.io.stats import DatasetStats
from apsgen.io.store import Manifest

TAGS = ["math", "process-reward-model", "prm", "process-supervision", "omegaprm", "synthetic", "apsgen"]

CONFIG_DOCS = {
    "steps": "One row per annotated step: MC value and the rollout counts behind it, the tree ids, the "
    "prefix and step text, and full provenance. Field by field: apsgen's `schemas/README.md`.",
    "problems": "One row per problem: searched or skipped (and why), cost in rollouts and tokens, verifier outcomes.",
    "rollouts": "One row per completion the search drew: the prefix it continued (`node_id`, a step row's), its text, "
    "finish reason, the answer read from it and the verifier's outcome. Re-grade or relabel without generating again.",
    **{name: f.doc for name, f in FORMATS.items()},
}


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def default_config(configs: list[str]) -> str:
    """The config `load_dataset(repo)` opens: the canonical steps when it has rows."""
    return "steps" if "steps" in configs else configs[0]


def card_metadata(manifest: Manifest, stats: DatasetStats, configs: list[str]) -> dict[str, Any]:
    hub = manifest.spec.get("hub") or {}
    default = default_config(configs)
    return {
        "license": hub.get("license") or "apache-2.0",
        "language": ["en"],
        "pretty_name": f"{manifest.job} (apsgen process supervision)",
        "task_categories": ["text-classification", "token-classification"],
        "tags": TAGS,
        "size_categories": [_size_category(stats.steps)],
        "configs": [
            {
                "config_name": name,
                **({"default": True} if name == default else {}),
                "data_files": [{"split": "train", "path": f"data/{name}/*.parquet"}],
            }
            for name in configs
        ],
    }


def _pretty_json(text: str | None) -> str:
    if not text:
        return "n/a"
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except ValueError:
        return text


def _calibration_line(c: dict[str, Any]) -> str:
    """The manifest's calibration summary, as a sentence for the card."""
    if c.get("source") == "prior":
        return f"none measured: prior recovery {c.get('recovery_mean')} (digest `{c.get('digest')}`)"
    return (f"recovery after a wrong step {c.get('recovery_mean')} on average, concentration "
            f"{c.get('recovery_concentration')}, from {c.get('informative')} sampled questions "
            f"(digest `{c.get('digest')}`, in every row's `label_rule`)")


TEMPLATE = Path(__file__).with_name("card_template.md")


def _positive_sentence(stats: DatasetStats) -> str:
    """What a `+` means here, and what the rule held back (docs/labels.md)."""
    undecidable = stats.stop_reasons.get("undecidable", 0)
    return ("a step is `+` when the label rule called it correct on its rollouts or it lies on a right-answer "
            "solution stored as an all-good path; right answers are stored as sampled only where the chance "
            "that one came through a wrong step is small, and elsewhere each only after every prefix before its last "
            f"step was decided correct on rollouts ({stats.allgood_over_limit} questions; {stats.allgood_verified} "
            f"paths stored so, {stats.allgood_hidden_errors} right answers found to hold a first error), and {undecidable} questions whose wrong steps end right about as "
            "often as right ones were left unlabelled. `apsgen bench search` measures the precision of both kinds "
            "(`+prec`, `AG prec`) on simulated policies")


def _stat_rows(stats: DatasetStats) -> list[tuple[str, str]]:
    labelled = stats.steps - stats.unlabelled_steps
    skipped = sum(stats.skipped.values())
    reasons = ": " + ", ".join(f"{k} {v}" for k, v in stats.skipped.items()) if stats.skipped else ""
    rows = [
        ("problems done", f"{stats.problems_done} ({stats.searched} searched, {skipped} skipped{reasons})"),
        ("excluded as contaminated", str(stats.excluded)),
        ("stored states", f"{stats.steps} ({labelled} with an MC value)"),
        ("label rule verdicts", ", ".join(f"{k} {v}" for k, v in stats.verdicts.items()) or "n/a"),
        ("positive / negative (MC > 0)", f"{stats.positive_mc0} / {stats.negative_mc0}"),
        ("positive / negative (MC > 0.5)", f"{stats.positive_mc05} / {stats.negative_mc05}"),
        ("first errors located", str(stats.first_errors)),
        ("positive labels", _positive_sentence(stats)),
        ("human audit", summary_sentence(stats.audit)),
    ]
    if stats.given_solutions:
        rows.append(("given solutions labelled (annotate mode)", str(stats.given_solutions)))
    if stats.judged_paths:
        rows.append(("LLM-judge consensus",
                     f"{stats.consensus_paths} of {stats.judged_paths} judged paths agree "
                     f"({100 * (stats.consensus_fraction or 0):.1f}% kept by `apsgen export --consensus`; "
                     f"{stats.judge_unparseable} replies without a verdict)"))
    d = stats.steps_per_path
    rows += [
        ("solution paths", f"{stats.paths}, of which {stats.correct_paths} correct solutions (all steps good) "
                           f"(steps per path: mean {d.mean}, max {d.max})"),
        ("rollouts", f"{stats.rollouts} (mean {stats.rollouts_per_problem.mean} per problem)"),
        ("generated tokens", str(stats.generated_tokens)),
        ("verifier outcomes", ", ".join(f"{k} {v}" for k, v in stats.verifier_outcomes.items())),
        ("MC histogram (10 bins over [0, 1])", " ".join(str(c) for c in stats.mc_histogram)),
    ]
    return rows


def _provenance_rows(manifest: Manifest, prov: dict[str, Any]) -> list[tuple[str, str]]:
    spec = manifest.spec
    policy = spec.get("policy") or {}
    sampling = _pretty_json(prov.get("sampling")) if prov else json.dumps(spec.get("sampling"), sort_keys=True)
    search = _pretty_json(prov.get("search_params")) if prov else json.dumps(spec.get("search"), sort_keys=True)
    rows = [
        ("policy model", f"`{prov.get('policy_model') or policy.get('model')}`"),
        ("policy revision", f"`{prov.get('policy_revision') or policy.get('revision') or 'n/a'}`"),
        ("prompt template hash", f"`{prov.get('prompt_template_hash', 'n/a')}`"),
        ("sampling", f"`{sampling}`"),
        ("search", f"`{search}`"),
        ("verifier", f"`{prov.get('verifier', 'n/a')}`"),
    ]
    if manifest.calibration:
        rows.append(("calibration", _calibration_line(manifest.calibration)))
    rows.append(("apsgen", f"`{prov.get('apsgen_version') or manifest.apsgen_version}` (card by {__version__})"))
    return rows


def build_card(
    *,
    manifest: Manifest,
    stats: DatasetStats,
    configs: list[str],
    threshold: float | None,
    repo_id: str | None = None,
    provenance: dict[str, Any] | None = None,
    build: str | None = None,
    empty_configs: list[str] | None = None,
) -> DatasetCard:
    """The dataset card: `huggingface_hub`'s card data for the YAML metadata, card_template.md for
    the body. Built from the manifest, the statistics and one step row's provenance: never a token."""
    spec = manifest.spec
    data = DatasetCardData(**card_metadata(manifest, stats, configs))
    label_sentence = (
        "Hard labels in the export configs are the label rule's verdicts (a path ends at its first `-`; "
        "undecided steps carry no label)" if threshold is None
        else f"Hard labels in the export configs are `MC > {threshold}`"
    )
    return DatasetCard.from_template(
        data,
        template_str=TEMPLATE.read_text(encoding="utf-8"),
        name=repo_id or manifest.job,
        repo=repo_id or "ORG/NAME",
        apsgen_version=manifest.apsgen_version,
        description=(spec.get("description") or "").strip(),
        job=manifest.job,
        fingerprint=manifest.fingerprint,
        build=build,
        updated_at=manifest.updated_at or manifest.created_at,
        configs=[{"name": c, "doc": CONFIG_DOCS.get(c, "")} for c in configs],
        empty_configs=", ".join(f"`{c}`" for c in empty_configs or []),
        label_sentence=label_sentence,
        load_config="stepwise" if "stepwise" in configs else default_config(configs),
        provenance=_provenance_rows(manifest, provenance or {}),
        statistics=_stat_rows(stats),
        spec_yaml=yaml.safe_dump(spec, sort_keys=False, allow_unicode=True).rstrip(),
        threshold_flag="" if threshold is None else f" --threshold {threshold}",
    )


def render_card(**kwargs: Any) -> str:
    """README.md text: YAML front matter, then the card body (see build_card)."""
    text = str(build_card(**kwargs))
    return text if text.endswith("\n") else text + "\n"
