"""Progress reads well in logs: no bar redraws when stderr is not a terminal, one line per interval."""

from __future__ import annotations

import logging

from apsgen.runner.progress import Progress


def test_without_a_terminal_progress_is_one_summary_line_per_interval(caplog) -> None:
    now = [0.0]
    caplog.set_level(logging.INFO, logger="apsgen.progress")
    p = Progress(total=100, is_tty=False, interval_s=30, clock=lambda: now[0])
    assert p.bar is None
    for _ in range(10):  # 10 problems over 20 s: no line yet
        now[0] += 2
        p.update(done=1, rollouts=8, tokens=400)
    assert not caplog.records
    now[0] += 10  # 30 s in
    p.update(done=1, rollouts=8, tokens=400, failed=0)
    p.update(failed=1)  # same instant: no second line
    assert len(caplog.records) == 1
    line = caplog.records[0].getMessage()
    assert "11/100 problems (0 failed)" in line and "ETA 243s" in line and "147 generated tok/s" in line
    p.close()
    assert "12/100 problems (1 failed)" in caplog.records[-1].getMessage()


def test_disabled_progress_is_silent(caplog) -> None:
    caplog.set_level(logging.INFO, logger="apsgen.progress")
    p = Progress(total=3, enabled=False)
    p.update(done=3)
    p.close()
    assert not caplog.records
