"""Where the real components of the integration tiers are, and what to do when one is missing.

On a laptop a missing component skips its tier with a loud reason; under CI (`CI=true`) the same
absence fails the run, so a green CI means every tier ran.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

POSTGRES_URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/tapledger_test"
REDIS_URL_DEFAULT = "redis://127.0.0.1:6379/15"
CONNECT_TIMEOUT_S = 2.0


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def _missing(component: str, url: str) -> None:
    message = f"{component} is not reachable at {url}"
    if in_ci():
        pytest.fail(f"{message}; under CI=true every tier must run", pytrace=False)
    pytest.skip(f"SKIPPED TIER: {message}")


def postgres_url() -> str:
    """The PostgreSQL server of the integration tier (`TAPLEDGER_TEST_POSTGRES_URL`)."""
    url = os.environ.get("TAPLEDGER_TEST_POSTGRES_URL", POSTGRES_URL_DEFAULT)
    if not _reachable(url, 5432):
        _missing("PostgreSQL", url)
    return url


def redis_url() -> str:
    """The Redis server of the integration tier (`TAPLEDGER_TEST_REDIS_URL`)."""
    url = os.environ.get("TAPLEDGER_TEST_REDIS_URL", REDIS_URL_DEFAULT)
    if not _reachable(url, 6379):
        _missing("Redis", url)
    return url


# Port 1 (tcpmux) is never a Redis, so connecting there is refused at once.
UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"
# Keys asked for per SCAN while a test removes the keys it wrote.
CLEANUP_SCAN_COUNT = 500


def delete_redis_keys_under(prefix: str, url: str | None = None) -> None:
    """Removes a test's keys (all under its own prefix) from the integration tier's Redis."""
    client = redis.Redis.from_url(url or redis_url())
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=CLEANUP_SCAN_COUNT))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


VPCD_ADDRESS_DEFAULT = "127.0.0.1:35963"


def vpcd_address() -> tuple[str, int]:
    """Where pcscd's vpcd driver waits for a virtual card (`TAPLEDGER_TEST_VPCD`)."""
    address = os.environ.get("TAPLEDGER_TEST_VPCD", VPCD_ADDRESS_DEFAULT)
    host, _, port = address.rpartition(":")
    if not _reachable(f"tcp://{address}", int(port)):
        _missing("pcscd with the vpcd driver", address)
    return host, int(port)


# Held by every test that puts a card in one of vpcd's slots, for as long as it does: two test
# runs on one machine (CI jobs, several checkouts) would otherwise put two cards in one slot, and
# each test would talk to the other's card. One holder keeps it for a test (at most ~40 s).
VPCD_LOCK_FILE = Path(tempfile.gettempdir()) / "tapledger-vpcd.lock"
VPCD_LOCK_WAIT_S = 50.0
VPCD_LOCK_POLL_S = 0.1


_vpcd_held = 0  # how deep this process is in `vpcd_exclusive` (a module fixture, then a test)


@contextmanager
def vpcd_exclusive() -> Iterator[None]:
    """vpcd's slots for this process alone (an advisory lock on a shared file); a process that
    holds them already holds them again at once."""
    global _vpcd_held  # this process's count of holders, changed only here
    if _vpcd_held:
        _vpcd_held += 1
        try:
            yield
        finally:
            _vpcd_held -= 1
        return
    with VPCD_LOCK_FILE.open("a") as lock:
        deadline = time.monotonic() + VPCD_LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"vpcd was busy for {VPCD_LOCK_WAIT_S:g} s: another test run holds "
                        f"{VPCD_LOCK_FILE}",
                        pytrace=False,
                    )
                time.sleep(VPCD_LOCK_POLL_S)  # polls the lock (a condition), bounded above
        _vpcd_held = 1
        try:
            yield
        finally:
            _vpcd_held = 0
            fcntl.flock(lock, fcntl.LOCK_UN)


def require_pyscard() -> None:
    """pyscard builds against pcsc-lite (Debian's libpcsclite-dev and swig); without it the
    PC/SC tier cannot run: skipped on a laptop, a failure under CI."""
    try:
        import smartcard  # noqa: F401
    except ImportError:
        message = "pyscard (the `pcsc` extra) is not installed in this Python environment"
        if in_ci():
            pytest.fail(f"{message}; under CI=true every tier must run", pytrace=False)
        pytest.skip(f"SKIPPED TIER: {message}", allow_module_level=True)
