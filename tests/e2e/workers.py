"""The worker processes of a running tapledger serve: their pids, sockets, and waiting for them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.conftest import Server

REPLACED_WITHIN_S = 60.0
POLL_S = 0.2


def wait_until(done: Callable[[], bool], within_s: float, failure: Callable[[], str]) -> None:
    """Polls `done` until it holds; fails with `failure()` once `within_s` has passed."""
    deadline = time.monotonic() + within_s
    while not done():
        assert time.monotonic() < deadline, failure()
        time.sleep(POLL_S)


def worker_pids(server: Server) -> set[int]:
    """The serve process's children that run a worker (spawned by multiprocessing)."""
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    workers = set()
    for child in children:
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue  # exited meanwhile
        if b"spawn_main" in command:
            workers.add(int(child))
    return workers


def wait_for_workers(server: Server, count: int) -> set[int]:
    pids: set[int] = set()

    def counted() -> bool:
        nonlocal pids
        pids = worker_pids(server)
        return len(pids) == count

    wait_until(counted, REPLACED_WITHIN_S, lambda: f"workers {pids}, expected {count}")
    return pids


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes
