"""A tiny fork server for verify workers: import sympy once, then fork a worker on request.

Run as `python -m apsgen.verify.zygote FD MEMORY_BYTES` by the pool. It is a fresh interpreter
(not multiprocessing's forkserver, which re-imports the caller's `__main__`: a script without a
main guard, or a Ray worker), single-threaded, so forking it is safe. The parent sends one end
of a new socketpair over FD; the zygote forks, the child serves checks on that socket, and the
zygote replies with the child's pid so the parent can SIGKILL it on a timeout.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import struct
import sys
from multiprocessing.connection import Connection

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the zygote exits (best effort elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[0]))
    memory_bytes = int(argv[1])
    from apsgen.verify.symbolic import equivalent_symbolic
    from apsgen.verify.worker import serve  # the expensive import, paid once here

    # ANTLR builds its parser tables on first use (~100 ms): pay that here, once, so that no
    # forked worker pays it on a live check.
    equivalent_symbolic("\\frac{x^{2}+1}{2} \\leq 3", "\\sqrt{2}")

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished workers
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 16, 1)
        except OSError:
            return 0
        if not message or not fds:
            return 0  # the pool closed its end (or died): stop, and the workers with us
        pid = os.fork()
        if pid == 0:
            control.close()
            _die_with_parent()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 0
            try:
                serve(Connection(fds[0]), memory_bytes)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(fds[0])
        control.sendall(struct.pack("!q", pid))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
