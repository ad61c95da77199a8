"""The pipelined Redis connection on a real Redis: many commands in flight on one connection,
each given its own reply; and a Redis that is silent or unreachable reported in time."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest
import redis
import uvloop

from parking.adapters.redis_pipeline import RedisPipeline, RedisPipelineError
from tests.services import UNREACHABLE_REDIS_URL, redis_url

pytestmark = pytest.mark.redis

IN_FLIGHT = 500
TIMEOUT_S = 0.2


def test_commands_in_flight_together_each_get_their_own_reply() -> None:
    prefix = f"test:pipeline:{secrets.token_hex(8)}:"
    client = redis.Redis.from_url(redis_url())
    client.mset({f"{prefix}{i}": f"value-{i}" for i in range(IN_FLIGHT)})

    async def read_all() -> list[object]:
        pipeline = RedisPipeline(redis_url())
        try:
            reads = [
                pipeline.execute("MGET", f"{prefix}{i}", f"{prefix}none") for i in range(IN_FLIGHT)
            ]
            return list(await asyncio.gather(*reads))
        finally:
            pipeline.close()

    try:
        replies = asyncio.run(read_all())
    finally:
        client.delete(*[f"{prefix}{i}" for i in range(IN_FLIGHT)])
        client.close()

    assert replies == [[f"value-{i}".encode(), None] for i in range(IN_FLIGHT)]


def test_an_error_reply_fails_its_command_only() -> None:
    async def run() -> tuple[BaseException | object, object]:
        pipeline = RedisPipeline(redis_url())
        try:
            wrong, right = await asyncio.gather(
                pipeline.execute("NO-SUCH-COMMAND"),
                pipeline.execute("PING"),
                return_exceptions=True,
            )
            return wrong, right
        finally:
            pipeline.close()

    wrong, right = asyncio.run(run())

    assert isinstance(wrong, RedisPipelineError)
    assert right == b"PONG"


def test_a_silent_server_fails_every_command_waiting_after_the_timeout() -> None:
    async def run() -> tuple[list[BaseException | object], float]:
        silent = await asyncio.start_server(lambda *_: None, "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        pipeline = RedisPipeline(f"redis://127.0.0.1:{port}/0", timeout_s=TIMEOUT_S)
        began = time.monotonic()
        try:
            outcomes = await asyncio.gather(
                *(pipeline.execute("GET", "k") for _ in range(3)), return_exceptions=True
            )
            return list(outcomes), time.monotonic() - began
        finally:
            pipeline.close()
            silent.close()

    outcomes, waited_s = asyncio.run(run())

    assert all(isinstance(outcome, RedisPipelineError) for outcome in outcomes)
    assert TIMEOUT_S <= waited_s < TIMEOUT_S * 10


def test_an_unreachable_redis_is_not_dialled_again_at_once() -> None:
    async def run() -> tuple[BaseException | object, BaseException | object]:
        pipeline = RedisPipeline(UNREACHABLE_REDIS_URL, retry_after_s=60)
        first = await asyncio.gather(pipeline.execute("PING"), return_exceptions=True)
        second = await asyncio.gather(pipeline.execute("PING"), return_exceptions=True)
        return first[0], second[0]

    first, second = asyncio.run(run())

    assert isinstance(first, RedisPipelineError)
    assert "unreachable" in str(first)
    assert isinstance(second, RedisPipelineError)
    assert "a moment ago" in str(second)


def test_commands_run_on_uvloop_as_the_server_runs_them() -> None:
    async def run() -> object:
        pipeline = RedisPipeline(redis_url())
        try:
            return await pipeline.execute("MGET", "test:pipeline:none", "test:pipeline:none")
        finally:
            pipeline.close()

    assert uvloop.run(run()) == [None, None]


def test_a_dropped_connection_is_dialled_again_for_the_next_command() -> None:
    async def run() -> tuple[object, object]:
        pipeline = RedisPipeline(redis_url())
        try:
            first = await pipeline.execute("PING")
            pipeline.close()
            return first, await pipeline.execute("PING")
        finally:
            pipeline.close()

    assert asyncio.run(run()) == (b"PONG", b"PONG")
