"""Typed records of what a question showed of its own recovery: fresh rollouts at prefixes known
to be wrong, and (calibration's fallback) at located first errors with the correct prefix before
each. Every field is an input of the label rule or of the calibration fit, stored with the output
so a label can be recomputed from it (`apsgen.label.replay`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

# What makes a probed prefix wrong: its own text ("arithmetic": it states a false equation), an
# error planted in one of the policy's correct steps ("planted": apsgen.label.text.planting), or the
# search located it as a first error ("located"; chosen because it rarely succeeded).
WrongBecause = Literal["arithmetic", "planted", "located"]


@dataclass(frozen=True)
class Probe:
    """Fresh rollouts at one prefix, counted as the label rule counts them."""

    successes: int  # clean successes (a right answer through a step that shows an error is none)
    graded: int  # rollouts whose final answer the verifier could judge
    reference: float  # the expected value of a correct prefix at the probed prefix's depth
    node_id: int | None = None  # the probed state, a row of the output (None: a planted prefix, no row)
    because: WrongBecause = "arithmetic"
    planted: str | None = None  # a planted prefix's changed step (the policy never wrote it)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Probe:
        return cls(int(d["successes"]), int(d["graded"]), float(d["reference"]), d.get("node_id"),
                   d.get("because", "arithmetic"), d.get("planted"))


@dataclass(frozen=True)
class OwnRecovery:
    """What one question shows of its own recovery before its search: fresh rollouts at prefixes
    that are wrong by their text, or made wrong on purpose (with room left to recover). Whether such a prefix still ends
    right is the question's recovery, seen without the label rule having chosen the prefix (a
    located first error was chosen *because* it rarely succeeded). The rule takes it as evidence
    about the question's rate, with the job's distribution as the prior."""

    probes: tuple[Probe, ...] = ()

    def graded(self) -> tuple[Probe, ...]:
        """The probes that graded something: the others say nothing about recovery."""
        return tuple(p for p in self.probes if p.graded > 0)

    def summary(self) -> dict[str, int]:
        return {"probes": len(self.probes), "successes": sum(p.successes for p in self.probes),
                "graded": sum(p.graded for p in self.probes)}

    def as_list(self) -> list[dict[str, Any]]:
        return [p.as_dict() for p in self.probes]

    @classmethod
    def from_list(cls, items: list[dict[str, Any]]) -> OwnRecovery:
        return cls(tuple(Probe.from_dict(d) for d in items))


@dataclass(frozen=True)
class LocatedProbe:
    """Calibration's fallback where a question has no prefix wrong by its text: fresh rollouts at a
    located first error (`wrong`) and at the correct prefix before it (`parent`)."""

    wrong: Probe
    parent: Probe
