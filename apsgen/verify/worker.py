"""The body of one verify worker process: receive (gold, pred) pairs, answer with a result.

Imported by the fork server before any worker is forked, so sympy is loaded once and each
replacement worker starts in milliseconds.
"""

from __future__ import annotations

import json
import logging
import multiprocessing.connection
import resource
import signal

from apsgen.verify import symbolic

logger = logging.getLogger(__name__)


def serve(conn: multiprocessing.connection.Connection, memory_bytes: int) -> None:
    """Answer checks until the pipe closes; the parent kills us when a check overruns."""
    # Ctrl-C belongs to the parent, which will kill us; a traceback per worker is noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):
        logger.debug("could not cap verify worker memory", exc_info=True)
    # JSON, not pickle: the parent must never unpickle bytes from a process that has been
    # chewing on untrusted input.
    conn.send_bytes(b'"ready"')
    while True:
        try:
            gold, pred, *raw = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            result: bool | str = symbolic.equivalent_symbolic(gold, pred, tuple(raw) if raw else None)
        except MemoryError:
            result = "timeout"
        except Exception:  # a parser or sympy bug on odd input is "not shown equal"
            logger.debug("symbolic check failed on %.80r vs %.80r", gold, pred, exc_info=True)
            result = False
        conn.send_bytes(json.dumps(result).encode())
