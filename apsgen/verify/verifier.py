"""The Verifier: extraction, the verdict cache, cheap comparison inline, symbolic work in a pool.

One Verifier is shared by every search running in a worker: its cache sees the same answers
over and over (rollouts of one question converge), and its process pool is created lazily on
the first check that needs sympy, so constructing it inside a Ray actor costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Protocol

from apsgen.verify.answer_check import Outcome, AnswerCheck
from apsgen.verify.brackets import split_top_level
from apsgen.verify.compare import PERCENT, compare_cheap, percent_match
from apsgen.verify.extract import extract_answer
from apsgen.verify.guard import refusal_reason
from apsgen.verify.normalize import normalize
from apsgen.verify.pool import SymbolicPool, SymbolicResult
from apsgen.verify.structure import shape_of

logger = logging.getLogger(__name__)

_Key = tuple[str, str]


class VerifySettings(Protocol):
    """What `Verifier.from_settings` reads: a job spec's `verify:` section."""

    timeout_s: float
    workers: int | None
    last_number_fallback: bool
    trailing_math_answer: bool
    closing_sentence_answer: bool
_MAX_CACHED_KEY_CHARS = 2_000


class Verifier:
    """Checks sampled solutions against a gold answer; safe to share across asyncio tasks."""

    def __init__(
        self,
        *,
        timeout_s: float = 2.0,
        workers: int | None = None,
        last_number_fallback: bool = False,
        trailing_math_answer: bool = True,
        closing_sentence_answer: bool = True,
        cache_size: int = 200_000,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.timeout_s = timeout_s
        self.workers = workers
        self.last_number_fallback = last_number_fallback
        self.trailing_math_answer = trailing_math_answer
        self.closing_sentence_answer = closing_sentence_answer
        self.cache_size = cache_size
        self._cache: OrderedDict[_Key, SymbolicResult] = OrderedDict()
        self._inflight: dict[_Key, Future[SymbolicResult]] = {}
        self._lock = threading.RLock()
        self._pool: SymbolicPool | None = None
        self._stats: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, settings: VerifySettings) -> Verifier:
        """The Verifier a job's `verify:` section describes."""
        return cls(
            timeout_s=settings.timeout_s,
            workers=settings.workers,
            last_number_fallback=settings.last_number_fallback,
            trailing_math_answer=settings.trailing_math_answer,
            closing_sentence_answer=settings.closing_sentence_answer,
        )

    def describe(self) -> str:
        """The version and every setting that changes a verdict, for provenance."""
        from apsgen.verify import __version__

        return (
            f"apsgen.verify {__version__} timeout_s={self.timeout_s} "
            f"last_number_fallback={self.last_number_fallback} "
            f"trailing_math_answer={self.trailing_math_answer} "
            f"closing_sentence_answer={self.closing_sentence_answer}"
        )

    # -- public API ---------------------------------------------------------------------------

    def check_batch(
        self, solutions: Sequence[str], gold: str, truncated: Sequence[bool] | None = None
    ) -> list[AnswerCheck]:
        """Verdicts for `solutions` against `gold`; blocks until every symbolic check is done."""
        pending, futures = self._start_batch(solutions, gold, truncated)
        return self._wait(pending, futures)

    async def acheck_batch(
        self, solutions: Sequence[str], gold: str, truncated: Sequence[bool] | None = None
    ) -> list[AnswerCheck]:
        """`check_batch` for asyncio: cheap paths run inline, symbolic checks are awaited."""
        pending, futures = self._start_batch(solutions, gold, truncated)
        for index, (answer, future) in futures.items():
            result = await asyncio.wrap_future(future)
            pending[index] = self._finish(answer, result)
        return pending  # type: ignore[return-value]

    def check_answers(self, answers: Sequence[str], gold: str) -> list[AnswerCheck]:
        """Verdicts for answers already extracted (no `\\boxed{}` search); blocks like check_batch."""
        pending, futures = self._start_answers(list(answers), gold, None)
        return self._wait(pending, futures)

    def warm_up(self) -> None:
        """Start the worker pool now (and wait for it) rather than on the first symbolic check."""
        self._ensure_pool().submit("x", "x").result()

    def stats(self) -> dict[str, int]:
        """Counts per outcome, cache hits, symbolic checks run, timeouts and pool restarts."""
        counts = {outcome.value: 0 for outcome in Outcome}
        counts.update(cache_hits=0, symbolic_checks=0, guard_refusals=0)
        with self._lock:
            counts.update(self._stats)
        counts["cache_size"] = len(self._cache)
        counts.update(pool_timeouts=0, pool_restarts=0)
        if self._pool is not None:
            counts.update(self._pool.stats())
        return counts

    def worker_pids(self) -> list[int]:
        """The symbolic pool's worker processes (none before its first symbolic check), for CPU
        accounting."""
        return self._pool.worker_pids() if self._pool is not None else []

    def close(self) -> None:
        """Stop the worker processes; the Verifier may be used again (a new pool starts)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: modules may already be gone
            pass

    # -- internals ----------------------------------------------------------------------------

    def _wait(
        self, pending: list[AnswerCheck | None], futures: dict[int, tuple[str, Future[SymbolicResult]]]
    ) -> list[AnswerCheck]:
        for index, (answer, future) in futures.items():
            pending[index] = self._finish(answer, future.result())
        return pending  # type: ignore[return-value]

    def _start_batch(
        self, solutions: Sequence[str], gold: str, truncated: Sequence[bool] | None
    ) -> tuple[list[AnswerCheck | None], dict[int, tuple[str, Future[SymbolicResult]]]]:
        if truncated is not None and len(truncated) != len(solutions):
            raise ValueError(
                f"truncated has {len(truncated)} flags for {len(solutions)} solutions"
            )
        items = list_items(normalize(gold))
        answers = [
            extract_answer(
                solution,
                last_number_fallback=self.last_number_fallback,
                trailing_math_answer=self.trailing_math_answer,
                closing_sentence_answer=self.closing_sentence_answer,
                list_items=items,
            )
            for solution in solutions
        ]
        return self._start_answers(answers, gold, truncated)

    def _start_answers(
        self, answers: list[str | None], gold: str, truncated: Sequence[bool] | None
    ) -> tuple[list[AnswerCheck | None], dict[int, tuple[str, Future[SymbolicResult]]]]:
        gold_norm = normalize(gold)
        verdicts: list[AnswerCheck | None] = []
        futures: dict[int, tuple[str, Future[SymbolicResult]]] = {}
        for index, answer in enumerate(answers):
            if truncated is not None and truncated[index]:
                verdicts.append(self._count(AnswerCheck(Outcome.TRUNCATED, answer)))
            elif answer is None:
                verdicts.append(self._count(AnswerCheck(Outcome.NO_ANSWER, None)))
            else:
                decided = self._decide(gold, gold_norm, answer, normalize(answer))
                if isinstance(decided, Future):
                    futures[index] = (answer, decided)
                    verdicts.append(None)
                else:
                    verdicts.append(self._finish(answer, decided))
        return verdicts, futures

    def _decide(
        self, gold_raw: str, gold: str, pred_raw: str, pred: str
    ) -> SymbolicResult | Future[SymbolicResult]:
        """The cached or cheap result for a normalised pair, else a future from the pool (whose
        math-verify reads the answers as written)."""
        # Normalising drops `%`; a percentage is still another value than its number alone.
        key = (gold + "%" * bool(PERCENT.search(gold_raw)), pred + "%" * bool(PERCENT.search(pred_raw)))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self._stats["cache_hits"] += 1
                return cached
            inflight = self._inflight.get(key)
            if inflight is not None:
                self._stats["cache_hits"] += 1
                return inflight
        cheap = compare_cheap(gold, pred)
        if cheap is not True and percent_match(gold_raw, pred_raw, gold, pred):
            cheap = True
        if cheap is None:
            refusal = refusal_reason(gold) or refusal_reason(pred)
            if refusal is not None:
                logger.debug("not checked symbolically (%s): %.80r vs %.80r", refusal, gold, pred)
                with self._lock:
                    self._stats["guard_refusals"] += 1
                cheap = False
        if cheap is not None:
            self._remember(key, cheap)
            return cheap
        return self._submit_symbolic(key, (gold, pred), (gold_raw, pred_raw))

    def _submit_symbolic(
        self, key: _Key, pair: tuple[str, str], raw: tuple[str, str]
    ) -> Future[SymbolicResult]:
        with self._lock:
            inflight = self._inflight.get(key)
            if inflight is not None:
                return inflight
            future = self._ensure_pool().submit(*pair, raw)
            self._inflight[key] = future
            self._stats["symbolic_checks"] += 1

        def _done(done: Future[SymbolicResult]) -> None:
            with self._lock:
                self._inflight.pop(key, None)
            if not done.cancelled() and done.exception() is None:
                result = done.result()
                # A check that expired in the queue, was cut short or lost its worker says
                # nothing about the pair itself: only a check that ran its whole budget is kept.
                if result != "timeout_uncached":
                    self._remember(key, result)

        future.add_done_callback(_done)
        return future

    def _ensure_pool(self) -> SymbolicPool:
        with self._lock:
            if self._pool is None:
                self._pool = SymbolicPool(timeout_s=self.timeout_s, workers=self.workers)
            return self._pool

    def _remember(self, key: _Key, result: SymbolicResult) -> None:
        if len(key[0]) + len(key[1]) > _MAX_CACHED_KEY_CHARS:
            return  # junk of that size is decided in microseconds; caching it only costs memory
        with self._lock:
            self._cache[key] = result
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def _finish(self, answer: str, result: SymbolicResult) -> AnswerCheck:
        if result is True:
            outcome = Outcome.CORRECT
        elif result is False:
            outcome = Outcome.WRONG
        else:
            outcome = Outcome.TIMEOUT
        return self._count(AnswerCheck(outcome, answer))

    def _count(self, verdict: AnswerCheck) -> AnswerCheck:
        with self._lock:
            self._stats[verdict.outcome.value] += 1
        return verdict


def list_items(gold: str) -> int:
    """How many items a list answer has (`2,7`, `\\{3,8\\}`, `(1,2),(3,4)`: 2); 0 for anything
    else (one tuple, an interval, a single value). Top-level commas only; linear."""
    shape = shape_of(gold)
    if shape.kind != "set":
        return 0
    inner = gold[2:-2] if gold.startswith("\\{") and gold.endswith("\\}") else gold
    items = len(split_top_level(inner, ","))
    return items if items >= 2 else 0


_default: Verifier | None = None
_default_lock = threading.Lock()


def _default_verifier() -> Verifier:
    global _default
    with _default_lock:
        if _default is None:
            _default = Verifier()
        return _default


def check(
    solution: str, gold: str, *, truncated: bool = False, last_number_fallback: bool = False
) -> AnswerCheck:
    """AnswerCheck for one solution, using a process-wide Verifier (its cache and pool)."""
    verifier = _default_verifier()
    # The fallback changes extraction only, so one shared Verifier (and pool) serves both.
    answer = extract_answer(solution, last_number_fallback=last_number_fallback)
    if truncated:
        return AnswerCheck(Outcome.TRUNCATED, answer)
    if answer is None:
        return AnswerCheck(Outcome.NO_ANSWER, None)
    return verifier.check_answers([answer], gold)[0]


def equivalent(gold: str, pred: str) -> bool:
    """True when the answer `pred` equals `gold` (a timeout counts as not equal)."""
    verdict = _default_verifier().check_answers([pred], gold)[0]
    return verdict.outcome is Outcome.CORRECT
