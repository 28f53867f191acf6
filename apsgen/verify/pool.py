"""A pool of killable worker processes for symbolic checks, with a hard per-check deadline.

sympy can hang or eat memory on adversarial input, and a thread cannot be stopped, so each
check runs in a worker process. One dispatcher thread owns the workers: it hands queued checks
to idle workers, waits on their sockets, and SIGKILLs a worker whose check passes its deadline,
forking a replacement from the zygote (milliseconds, not a fresh sympy import). Callers get
`concurrent.futures.Future`s, which asyncio can await without blocking its loop.
"""

from __future__ import annotations

import collections
import json
import logging
import multiprocessing.connection
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Literal, Union

logger = logging.getLogger(__name__)

# True/False: decided. "timeout": the check ran out its whole budget (worth caching).
# "timeout_uncached": it expired waiting in the queue, ran only part of its budget, or its
# worker died, so the pair itself may be fine; callers report TIMEOUT but must not cache it.
SymbolicResult = Union[bool, Literal["timeout", "timeout_uncached"]]

# sympy's import alone maps a few hundred MB; past this a worker gets MemoryError instead of
# taking the machine down with it.
_WORKER_MEMORY_BYTES = 3 * 1024**3


def default_workers() -> int:
    return max(2, min(4, (os.cpu_count() or 2) // 2))


@dataclass
class _Task:
    gold: str
    pred: str
    raw: tuple[str, str] | None
    future: Future[SymbolicResult]
    submitted: float
    deadline: float = 0.0  # set once a worker is ready: the zygote's boot is not charged
    started: float = 0.0


@dataclass
class _Worker:
    pid: int
    conn: multiprocessing.connection.Connection
    ready: bool = False
    task: _Task | None = None


class _Zygote:
    """Handle on the `apsgen.verify.zygote` process that forks workers for us."""

    def __init__(self, memory_bytes: int) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        # The zygote must import this very apsgen, wherever the caller found it.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "apsgen.verify.zygote", str(theirs.fileno()), str(memory_bytes)],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env=env,
        )
        theirs.close()
        self.control = ours

    def fork_worker(self) -> _Worker:
        ours, theirs = socket.socketpair()
        try:
            socket.send_fds(self.control, [b"fork"], [theirs.fileno()])
        finally:
            theirs.close()
        reply = b""
        while len(reply) < 8:  # blocks while the zygote is still importing sympy (first call)
            chunk = self.control.recv(8 - len(reply))
            if not chunk:
                ours.close()
                raise RuntimeError(f"verify zygote exited with code {self.process.poll()}")
            reply += chunk
        (pid,) = struct.unpack("!q", reply)
        return _Worker(pid, multiprocessing.connection.Connection(ours.detach()))

    def close(self) -> None:
        self.control.close()  # EOF: the zygote exits, and its workers die with it
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class SymbolicPool:
    """Runs `symbolic.equivalent_symbolic` in worker processes, each check bounded by timeout_s.

    The deadline of a check is `timeout_s` after it was submitted (or after the first worker
    came up, on a cold start), whether it spends that time queued or running, so no caller
    waits much longer than `timeout_s` for any check.
    """

    def __init__(self, *, timeout_s: float, workers: int | None = None) -> None:
        self.timeout_s = timeout_s
        self.size = workers or default_workers()
        self._queue: collections.deque[_Task] = collections.deque()
        # Futures are always resolved outside this lock: their callbacks take the Verifier's
        # lock, and a caller holding that one may be waiting here in submit().
        self._lock = threading.RLock()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._workers: list[_Worker] = []
        self._zygote: _Zygote | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        self._counts: collections.Counter[str] = collections.Counter()

    def submit(
        self, gold: str, pred: str, raw: tuple[str, str] | None = None
    ) -> Future[SymbolicResult]:
        """A check of the normalised pair; `raw` (the answers as written) is what math-verify reads."""
        future: Future[SymbolicResult] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("SymbolicPool is closed")
            self._queue.append(_Task(gold, pred, raw, future, time.monotonic()))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._dispatch_forever, name="apsgen-verify-pool", daemon=True
                )
                self._thread.start()
        self._wake()
        return future

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {f"pool_{k}": v for k, v in self._counts.items()}

    def worker_pids(self) -> list[int]:
        """The pids of the live workers (for tests and diagnostics)."""
        return [w.pid for w in list(self._workers)]

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._wake()
        if thread is not None:
            thread.join(timeout=5)
        self._wake_reader.close()
        self._wake_writer.close()

    # -- dispatcher thread --------------------------------------------------------------------

    def _wake(self) -> None:
        try:
            self._wake_writer.send(b"x")
        except OSError:
            pass  # the buffer is full (a wake-up is pending anyway) or the pool is closing

    def _dispatch_forever(self) -> None:
        try:
            while not self._closed:
                self._top_up_workers()
                self._assign_tasks()
                self._wait_and_collect()
                self._enforce_deadlines()
        except Exception:
            logger.exception("verify pool dispatcher crashed; pending checks report timeout")
        finally:
            self._shutdown()

    def _top_up_workers(self) -> None:
        while len(self._workers) < self.size:
            if self._zygote is None or self._zygote.process.poll() is not None:
                if self._zygote is not None:
                    logger.warning(
                        "verify zygote died (code %s); starting a new one",
                        self._zygote.process.poll(),
                    )
                    self._zygote.close()
                self._zygote = _Zygote(_WORKER_MEMORY_BYTES)
            self._workers.append(self._zygote.fork_worker())
            with self._lock:
                self._counts["workers_started"] += 1

    def _assign_tasks(self) -> None:
        now = time.monotonic()
        any_ready = any(w.ready for w in self._workers)
        expired: list[_Task] = []
        with self._lock:
            tasks = self._queue
            if any_ready:
                for task in tasks:
                    if not task.deadline:
                        task.deadline = max(task.submitted, now) + self.timeout_s
            while tasks and tasks[0].deadline and tasks[0].deadline <= now:
                expired.append(tasks.popleft())
                self._counts["queue_timeouts"] += 1
            idle = [w for w in self._workers if w.ready and w.task is None]
            while idle and tasks:
                task = tasks.popleft()
                if task.future.cancelled():
                    continue
                worker = idle.pop()
                task.started = now
                try:
                    worker.conn.send_bytes(json.dumps([task.gold, task.pred, *(task.raw or ())]).encode())
                except OSError:
                    tasks.appendleft(task)
                    self._retire(worker, "broken pipe")
                    continue
                worker.task = task
        for task in expired:
            _resolve(task.future, "timeout_uncached")

    def _next_deadline(self) -> float | None:
        deadlines = [w.task.deadline for w in self._workers if w.task is not None]
        with self._lock:
            deadlines += [t.deadline for t in self._queue if t.deadline]
        return min(deadlines) if deadlines else None

    def _wait_and_collect(self) -> None:
        deadline = self._next_deadline()
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        waitables: list[object] = [self._wake_reader, *(w.conn for w in self._workers)]
        ready = multiprocessing.connection.wait(waitables, timeout=timeout)
        if self._wake_reader in ready:
            try:
                while self._wake_reader.recv(4096):
                    pass
            except OSError:
                pass  # drained
        for worker in list(self._workers):
            if worker.conn not in ready:
                continue
            try:
                message = json.loads(worker.conn.recv_bytes())
            except (EOFError, OSError, ValueError):
                # The worker died (a MemoryError in C code, the OOM killer): the check it held
                # took more than we allow, which is what a timeout reports.
                self._fail_task(worker, "timeout_uncached")
                self._retire(worker, "died")
                continue
            if message == "ready":
                worker.ready = True
            elif worker.task is not None:
                task, worker.task = worker.task, None
                with self._lock:
                    self._counts["checks"] += 1
                result = message if message in (True, False, "timeout") else False
                _resolve(task.future, result)

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for worker in list(self._workers):
            task = worker.task
            if task is not None and task.deadline <= now:
                ran_full_budget = now - task.started >= 0.9 * self.timeout_s
                with self._lock:
                    self._counts["timeouts"] += 1
                logger.debug(
                    "symbolic check timed out after %.2fs: %.80r vs %.80r",
                    now - task.started, task.gold, task.pred,
                )
                self._fail_task(worker, "timeout" if ran_full_budget else "timeout_uncached")
                self._retire(worker, "timeout")

    def _fail_task(self, worker: _Worker, result: SymbolicResult) -> None:
        if worker.task is not None:
            task, worker.task = worker.task, None
            _resolve(task.future, result)

    def _retire(self, worker: _Worker, reason: str) -> None:
        """Kill `worker` and forget it; `_top_up_workers` forks its replacement."""
        if worker in self._workers:
            self._workers.remove(worker)
        with self._lock:
            self._counts["restarts"] += 1
        logger.debug("replacing verify worker pid %s (%s)", worker.pid, reason)
        _kill(worker)

    def _shutdown(self) -> None:
        for worker in self._workers:
            self._fail_task(worker, "timeout_uncached")
            _kill(worker)
        self._workers.clear()
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None
        with self._lock:
            left = list(self._queue)
            self._queue.clear()
        for task in left:
            _resolve(task.future, "timeout_uncached")


def _resolve(future: Future[SymbolicResult], result: SymbolicResult) -> None:
    try:
        future.set_result(result)
    except InvalidStateError:
        pass  # the caller cancelled it meanwhile


def _kill(worker: _Worker) -> None:
    try:
        os.kill(worker.pid, signal.SIGKILL)  # the zygote reaps it
    except ProcessLookupError:
        pass
    worker.conn.close()
