"""One aggregated progress bar on the driver: problems, rollouts/s, generated tokens/s, ETA."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, enabled: bool = True):
        self.t0 = time.monotonic()
        self.rollouts = 0
        self.tokens = 0
        self.failed = 0
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="problem", dynamic_ncols=True, file=sys.stderr, smoothing=0.1)

    def update(self, done: int = 0, rollouts: int = 0, tokens: int = 0, failed: int = 0) -> None:
        self.rollouts += rollouts
        self.tokens += tokens
        self.failed += failed
        if self.bar is None:
            return
        dt = max(time.monotonic() - self.t0, 1e-9)
        post = {"rollouts/s": f"{self.rollouts / dt:.1f}", "tok/s": f"{self.tokens / dt:.0f}"}
        if self.failed:
            post["failed"] = self.failed
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(done + failed)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
