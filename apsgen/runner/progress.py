"""Progress on the driver: one aggregated bar on a terminal, one summary log line every 30 s elsewhere.

A bar redrawn into a log file (`apsgen submit` logs, cron, nightly) is hundreds of carriage
returns on one line, so when stderr is not a terminal the same figures go to the log instead:
problems done of total, problems/s, ETA, generated tokens/s and failures.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

log = logging.getLogger("apsgen.progress")

LOG_INTERVAL_S = 30.0


class Progress:
    def __init__(
        self,
        total: int,
        enabled: bool = True,
        *,
        is_tty: bool | None = None,
        interval_s: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.clock = clock
        self.t0 = clock()
        self.total = total
        self.done = 0
        self.rollouts = 0
        self.tokens = 0
        self.failed = 0
        self.interval_s = interval_s
        self.last_log = self.t0
        self.bar = None
        self.log_lines = False
        if enabled:
            if sys.stderr.isatty() if is_tty is None else is_tty:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="problem", dynamic_ncols=True, file=sys.stderr, smoothing=0.1)
            else:
                self.log_lines = True

    def update(self, done: int = 0, rollouts: int = 0, tokens: int = 0, failed: int = 0) -> None:
        self.done += done
        self.rollouts += rollouts
        self.tokens += tokens
        self.failed += failed
        now = self.clock()
        dt = max(now - self.t0, 1e-9)
        if self.bar is not None:
            post = {"rollouts/s": f"{self.rollouts / dt:.1f}", "tok/s": f"{self.tokens / dt:.0f}"}
            if self.failed:
                post["failed"] = self.failed
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(done + failed)
        elif self.log_lines and now - self.last_log >= self.interval_s:
            self.last_log = now
            log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        dt = max((self.clock() if now is None else now) - self.t0, 1e-9)
        finished = self.done + self.failed
        rate = finished / dt
        left = self.total - finished
        eta = f"{left / rate:.0f}s" if rate > 0 and left > 0 else "-"
        return (
            f"progress: {finished}/{self.total} problems ({self.failed} failed), {rate:.2f} problems/s, "
            f"ETA {eta}, {self.tokens / dt:.0f} generated tok/s, {self.rollouts / dt:.1f} rollouts/s"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.log_lines:
            log.info("%s", self.line())
