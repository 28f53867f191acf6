"""SearchWorker: a Ray actor that owns one policy engine and one verifier for its whole life and
runs many question searches on them concurrently (asyncio tasks in the actor's event loop)."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from typing import Any

from apsgen.config import JobSpec
from apsgen.policy.base import Sampling
from apsgen.policy.factory import make_policy
from apsgen.problem import Problem
from apsgen.search.result import ProblemResult

log = logging.getLogger(__name__)


@dataclass
class WorkerInfo:
    policy_model: str
    policy_revision: str | None
    prompt_template_hash: str
    verifier: str


@dataclass
class SearchOutcome:
    """A problem's result, or the application error that stopped its search."""

    problem_id: str
    result: ProblemResult | None = None
    error: str | None = None


class SearchWorker:
    def __init__(self, spec: dict[str, Any], verbose: bool = False):
        logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
        self.spec = JobSpec.model_validate(spec)
        self.verbose = verbose
        self.policy = make_policy(self.spec.policy, seed=self.spec.seed, verbose=verbose)
        from apsgen.verify import Verifier

        v = self.spec.verify
        self.verifier = Verifier(timeout_s=v.timeout_s, workers=v.workers, last_number_fallback=v.last_number_fallback)
        s = self.spec.sampling
        self.sampling = Sampling(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, stop=tuple(s.stop))

    async def ready(self) -> WorkerInfo:
        """Start the engine (model load) and say what it is, for provenance."""
        start = getattr(self.policy, "start", None)
        if start is not None:
            await start()
        import apsgen.verify as verify

        v = self.spec.verify
        return WorkerInfo(
            policy_model=self.policy.name,
            policy_revision=self.policy.revision,
            prompt_template_hash=getattr(self.policy, "template_hash", "none"),
            verifier=f"apsgen.verify {getattr(verify, '__version__', '1')} timeout_s={v.timeout_s} "
            f"last_number_fallback={v.last_number_fallback}",
        )

    async def search(self, problem: Problem) -> SearchOutcome:
        from apsgen.search import run_search

        try:
            result = await run_search(
                problem, self.policy, self.verifier, self.spec.search, self.sampling, seed=self.spec.seed
            )
            return SearchOutcome(problem.id, result=result)
        except Exception as e:  # an application error belongs to this problem, not to the run
            log.warning("problem %s failed: %s", problem.id, e)
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            return SearchOutcome(problem.id, error=detail[:2000])

    def stats(self) -> dict[str, Any]:
        return {"verifier": self.verifier.stats()}

    async def shutdown(self) -> None:
        await self.policy.close()
        self.verifier.close()
