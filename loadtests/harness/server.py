"""`tapledger serve` with its workers, and `tapledger projections run` beside it, each in a
process of its own, started and stopped by the benchmark."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from loadtests.harness.services import REDIS_URL, journeys_position

HOST = "127.0.0.1"
WORKERS = 2
HEALTH_TIMEOUT_S = 60.0
HEALTH_REQUEST_TIMEOUT_S = 1.0
HEALTH_POLL_S = 0.2
# After the first answer to /healthz, time for the other worker to start answering as well.
WORKERS_READY_S = 1.0
STOP_TIMEOUT_S = 15.0
FOLLOW_WARMUP_S = 5.0
FOLLOW_SECONDS = 20.0
ADMIN_TOKEN_CHARS_MAX = 40
RATE_LIMIT_WINDOW_S = 60


def tapledger_command(*args: str) -> list[str]:
    """The `tapledger` console script installed beside this interpreter, with `args`."""
    return [str(Path(sys.executable).with_name("tapledger")), *args]


def server_env(work: Path, database_url: str, rate_limit: int) -> tuple[dict[str, str], str]:
    """The environment of the server and the followers, with secrets drawn for this run; and
    the admin token among them."""
    admin_token = secrets.token_urlsafe(30)[:ADMIN_TOKEN_CHARS_MAX]
    env = os.environ | {
        "TAPLEDGER_ENVIRONMENT": "production",
        "TAPLEDGER_DATABASE_URL": database_url,
        "TAPLEDGER_REDIS_URL": REDIS_URL,
        "TAPLEDGER_ADMIN_TOKEN": admin_token,
        "TAPLEDGER_KEY_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "TAPLEDGER_SAM_KEY_FILE": str(work / "sam.sealed"),
        "TAPLEDGER_SAM_KEY_FILE_SEALED": "true",
        "TAPLEDGER_DATA_DIR": str(work / "data"),
        "TAPLEDGER_RATE_LIMIT_REQUESTS": str(rate_limit),
        "TAPLEDGER_RATE_LIMIT_WINDOW_S": str(RATE_LIMIT_WINDOW_S),
        # The followers run in their own process (`tapledger projections run`), as deployed.
        "TAPLEDGER_FOLLOW_IN_PROCESS": "false",
    }
    return env, admin_token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def interrupt(process: subprocess.Popen[bytes]) -> None:
    """SIGINT, as Ctrl-C would; the whole session killed if it does not stop in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def worker_pids(self) -> list[int]:
        """The uvicorn workers: the serve process's children that run `spawn_main`."""
        pids = []
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        for pid in children.read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"spawn_main" in cmdline:
                pids.append(int(pid))
        return pids

    def stop(self) -> None:
        interrupt(self.process)


def start_server(env: dict[str, str], port: int, log: Path) -> Server:
    command = tapledger_command(
        "serve", "--host", HOST, "--port", str(port), "--workers", str(WORKERS)
    )
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(process, f"http://{HOST}:{port}", log)
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: see {log}")
        try:
            health = httpx.get(f"{server.base_url}/healthz", timeout=HEALTH_REQUEST_TIMEOUT_S)
            if health.status_code == httpx.codes.OK:
                # Both workers answer before the clock starts.
                time.sleep(WORKERS_READY_S)
                return server
        except httpx.HTTPError:
            pass
        time.sleep(HEALTH_POLL_S)
    server.stop()
    raise SystemExit(f"the server did not answer /healthz within {HEALTH_TIMEOUT_S:.0f} s")


class Followers:
    """`tapledger projections run` in its own process while the block runs."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Followers:
        command = tapledger_command("projections", "run")
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            interrupt(self.process)

    @property
    def pid(self) -> int:
        """The followers' process, once started."""
        if self.process is None:
            raise RuntimeError("the followers are not started")
        return self.process.pid


@dataclass(frozen=True)
class FollowResult:
    applied: int  # taps the journeys follower applied in the window
    seconds: float
    behind: int  # taps still to apply when the window closed

    @property
    def per_s(self) -> float:
        return self.applied / self.seconds


def measure_followers(env: dict[str, str], database_url: str, log: Path) -> FollowResult:
    """How fast the followers, in their own process, work through the taps the load left."""
    with Followers(env, log):
        time.sleep(FOLLOW_WARMUP_S)
        start, _ = journeys_position(database_url)
        began = time.monotonic()
        time.sleep(FOLLOW_SECONDS)
        end, head = journeys_position(database_url)
        seconds = time.monotonic() - began
    return FollowResult(end - start, seconds, head - end)
