"""Serving the HTTP API from several worker processes, each listening on its own socket.

Uvicorn's own workers share one listening socket, and the worker that wakes first accepts every
connection then waiting. Validators that connect together can therefore all land on one worker
while the other idles: `loadtests/run_taps.py` saw all 8 of its connections on one of two
workers, and half the machine did nothing. Here every worker listens on a socket of its own,
bound with SO_REUSEPORT, and the kernel spreads new connections across the sockets by a hash of
their addresses, whichever worker happens to be awake.

The supervisor binds the sockets before it starts the workers, replaces a worker that dies, and
stops them all on SIGINT or SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import socket
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from ticketing.shared.domain.invariants import require

WORKERS_MAX = 16
# A worker that keeps dying is a fault to report, not to hide behind endless restarts.
WORKER_RESTARTS_MAX = 10
WORKER_STOP_TIMEOUT_S = 30.0
SUPERVISOR_TICK_S = 1.0

logger = logging.getLogger("tapledger.serve")


class PortInUse(Exception):
    """The address to serve on is taken by another process."""


def listening_sockets(host: str, port: int, count: int, backlog: int) -> list[socket.socket]:
    """`count` sockets listening on one address, each with SO_REUSEPORT.

    A socket bound first without SO_REUSEPORT makes sure no other server holds the port:
    otherwise a second `tapledger serve` of the same user would silently share its traffic.
    Port 0 takes a free port, the same for every socket."""
    require(1 <= count <= WORKERS_MAX, "a bounded number of workers")
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise PortInUse(f"cannot serve on {host}:{port}: {error.strerror}") from error
        bound = (address[0], probe.getsockname()[1], *address[2:])
    sockets = []
    for _ in range(count):
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(bound)
        sock.listen(backlog)
        sockets.append(sock)
    return sockets


def _work(config: uvicorn.Config, sock: socket.socket) -> None:
    """One worker's life: serve on `sock` until told to stop."""
    config.configure_logging()
    # A Ctrl-C reaches every process of the terminal's group; the supervisor stops them all.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """Runs one worker per socket and keeps them running; see the module docstring."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        require(config.workers == 1, "each worker serves as one process")
        self._config = config
        self._sockets = sockets
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[BaseProcess] = []
        self._stopping = False
        self.restarts = 0

    def run(self) -> int:
        """Serves until SIGINT or SIGTERM; the exit status for the command."""
        previous = {
            signum: signal.signal(signum, self._stop) for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self._workers = [self._start(sock) for sock in self._sockets]
            return self._watch()
        finally:
            self._stop_workers()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            for sock in self._sockets:
                sock.close()

    def _start(self, sock: socket.socket) -> BaseProcess:
        worker = self._context.Process(target=_work, args=(self._config, sock), daemon=False)
        worker.start()
        logger.info("started worker %s", worker.pid)
        return worker

    def _watch(self) -> int:
        while not self._stopping:
            wait([w.sentinel for w in self._workers], timeout=SUPERVISOR_TICK_S)
            for index, worker in enumerate(self._workers):
                if self._stopping or worker.is_alive():
                    continue
                if worker.exitcode == STARTUP_FAILURE:
                    logger.error("worker %s could not start; stopping", worker.pid)
                    return STARTUP_FAILURE
                if self.restarts >= WORKER_RESTARTS_MAX:
                    logger.error("workers died %d times; stopping", self.restarts)
                    return 1
                self.restarts += 1
                logger.warning(
                    "worker %s died (exit %s); replacing it", worker.pid, worker.exitcode
                )
                self._workers[index] = self._start(self._sockets[index])
        return 0

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        self._stopping = True

    def _stop_workers(self) -> None:
        for worker in self._workers:
            if worker.is_alive() and worker.pid is not None:
                # Uvicorn finishes the requests in flight on SIGTERM, then exits.
                worker.terminate()
        for worker in self._workers:
            worker.join(WORKER_STOP_TIMEOUT_S)
            if worker.is_alive():
                worker.kill()
                worker.join()


def serve(config: uvicorn.Config, host: str, port: int, workers: int) -> int:
    """Serves `config`'s app on `host:port` from `workers` processes; the exit status."""
    sockets = listening_sockets(host, port, workers, config.backlog)
    return Supervisor(config, sockets).run()
