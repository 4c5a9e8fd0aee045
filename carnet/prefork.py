"""``carnet serve --workers N``: several server processes sharing one listening socket (pre-fork).

One Python process runs the request code on one core at a time (ITI-41 costs about 8-10 ms of server
CPU, so one process tops out near 100-130 submissions/s whatever the number of threads). With
PostgreSQL, several processes serve the same port: the parent migrates the database and recovers
interrupted blob publishes once, binds the socket, then forks the workers, each with its own engine
and waitress threads, and replaces any that dies. The parent itself runs no thread (forking a
threaded process can deadlock on a lock a vanished thread held); worker 0 also runs the MLLP listener
and the notification outbox. SQLite is refused: its writers would queue on file locks across
processes, which is what the in-process writer queue of ``carnet.db`` exists to avoid.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

# A worker that dies sooner than this after its start is not restarted in a loop.
MIN_LIFETIME_S = 5.0


def serve(workers: int, sock: socket.socket, run_worker: Callable[[int, socket.socket], None]) -> int:
    """Fork ``workers`` processes running ``run_worker(slot, sock)``; supervise until SIGTERM/SIGINT."""
    sock.set_inheritable(True)
    children: dict[int, tuple[int, float]] = {}  # pid -> (slot, started)
    stopping = False

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                run_worker(slot, sock)
            except KeyboardInterrupt:
                pass
            except BaseException:  # noqa: BLE001 - a worker reports its death and exits
                log.exception("worker %d failed", slot)
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        children[pid] = (slot, time.monotonic())

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in range(workers):
        spawn(slot)
    print(f"Carnet workers: {', '.join(str(p) for p in children)}", flush=True)
    failed = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        slot, started = children.pop(pid, (-1, 0.0))
        if stopping or slot < 0:
            continue
        if time.monotonic() - started < MIN_LIFETIME_S:
            # Dying at start (bad settings, database down): stop rather than fork in a loop.
            log.error("worker %d (pid %d) exited at start (status %d): stopping", slot, pid, status)
            failed = 1
            stop(signal.SIGTERM, None)
            continue
        log.warning("worker %d (pid %d) exited (status %d): starting another", slot, pid, status)
        spawn(slot)
    sock.close()
    return failed
