"""One pipelined Redis connection per event loop, for the enforcement index's reads.

A check reads two keys (MGET). Through redis-py's asyncio client that read cost a worker more
CPU than the rest of the route (measured with py-spy under load: about a fifth of the worker's
samples): a pooled connection taken and given back, a timeout scope, and a socket write per
command. Here every check in flight shares one connection: commands are written in order,
those made in one turn of the loop in a single write, and the replies, which Redis sends in the
same order, are handed to their callers as they arrive, read by hiredis (the parser redis-py
uses when it is installed).

A connection that does not answer within `timeout_s` is dropped with everything waiting on it
(`RedisPipelineError`); a failed connection attempt is not retried for `retry_after_s`, so an
unreachable Redis costs a check nothing but its fallback.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any, cast

import hiredis
from redis.connection import SSLConnection, parse_url

PIPELINE_TIMEOUT_S_DEFAULT = 0.5
PIPELINE_CONNECT_TIMEOUT_S_DEFAULT = 1.0
PIPELINE_RETRY_AFTER_S_DEFAULT = 1.0

Reply = bytes | int | list[Any] | None
# What the reader answers while a reply is still incomplete.
_INCOMPLETE = object()


class RedisPipelineError(Exception):
    """Redis could not be reached, did not answer in time, or answered with an error."""


class ProtocolViolation(RedisPipelineError):
    """Bytes that are not a reply this client reads: the connection cannot be trusted."""


def encode_command(*args: bytes | str | int) -> bytes:
    """A command as Redis reads it: an array of bulk strings."""
    # hiredis's stub types the command as a tuple of one; it takes any number of parts.
    packed: bytes = hiredis.pack_command(args)  # type: ignore[arg-type]
    return packed


class Replies:
    """The replies in the bytes received so far, in order, read by hiredis; an error reply is
    returned as a `RedisPipelineError`, not raised."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader(notEnoughData=_INCOMPLETE)

    def feed(self, data: bytes) -> None:
        self._reader.feed(data)

    def next(self) -> tuple[Reply | Exception] | None:
        """The next whole reply (in a 1-tuple, as a reply may be None), or None if there is none
        yet."""
        try:
            reply = self._reader.gets()
        except hiredis.ProtocolError as error:
            raise ProtocolViolation(str(error)) from error
        if reply is _INCOMPLETE:
            return None
        if isinstance(reply, hiredis.ReplyError):
            return (RedisPipelineError(str(reply)),)
        return (reply,)


class _Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self.loop = loop
        self.timeout_s = timeout_s
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.waiting: deque[tuple[asyncio.Future[Reply], float]] = deque()
        self.replies = Replies()
        self.outgoing: list[bytes] = []
        self.watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream connection, by construction; uvloop's transports are not asyncio's classes.
        self.transport, self.open = cast(asyncio.Transport, transport), True

    def request(self, command: bytes) -> asyncio.Future[Reply]:
        if not self.open:
            raise RedisPipelineError("the Redis connection is closed")
        future: asyncio.Future[Reply] = self.loop.create_future()
        if not self.outgoing:
            self.loop.call_soon(self._flush)
        self.outgoing.append(command)
        self.waiting.append((future, self.loop.time()))
        if self.watchdog is None:
            self.watchdog = self.loop.call_later(self.timeout_s, self._watch)
        return future

    def _flush(self) -> None:
        if self.open and self.transport is not None and self.outgoing:
            self.transport.write(b"".join(self.outgoing))
        self.outgoing.clear()

    def _watch(self) -> None:
        self.watchdog = None
        if not self.waiting:
            return
        late_s = self.loop.time() - self.waiting[0][1]
        if late_s >= self.timeout_s:
            self.close(RedisPipelineError(f"Redis did not answer within {self.timeout_s} s"))
            return
        self.watchdog = self.loop.call_later(self.timeout_s - late_s, self._watch)

    def data_received(self, data: bytes) -> None:
        self.replies.feed(data)
        try:
            while self.waiting and (read := self.replies.next()) is not None:
                (reply,) = read
                future, _ = self.waiting.popleft()
                if future.done():  # its caller gave up; the reply is consumed all the same
                    continue
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except ProtocolViolation as error:
            self.close(RedisPipelineError(f"an unreadable reply from Redis: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisPipelineError(f"the Redis connection was lost: {exc}"))

    def close(self, error: RedisPipelineError) -> None:
        if self.transport is not None:
            self.transport.abort()
        self._fail(error)

    def _fail(self, error: RedisPipelineError) -> None:
        self.open = False
        self.outgoing.clear()
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)


class RedisPipeline:
    """Commands to one Redis on one connection, from coroutines of one event loop."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = PIPELINE_TIMEOUT_S_DEFAULT,
        connect_timeout_s: float = PIPELINE_CONNECT_TIMEOUT_S_DEFAULT,
        retry_after_s: float = PIPELINE_RETRY_AFTER_S_DEFAULT,
    ) -> None:
        self.options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.retry_after_s = retry_after_s
        self.loop = asyncio.get_running_loop()
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._retry_at = 0.0

    async def execute(self, *args: bytes | str | int) -> Reply:
        connection = self._connection
        if connection is None or not connection.open:
            connection = await self._connect()
        return await connection.request(encode_command(*args))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close(RedisPipelineError("closed"))

    async def _connect(self) -> _Connection:
        if self._connecting is None:
            if self.loop.time() < self._retry_at:
                raise RedisPipelineError("Redis was unreachable a moment ago")
            self._connecting = self.loop.create_task(self._open())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _open(self) -> _Connection:
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                connection = await self._dial()
                for command in self._set_up():
                    await connection.request(encode_command(*command))
        except (OSError, TimeoutError, RedisPipelineError) as error:
            self._retry_at = self.loop.time() + self.retry_after_s
            raise RedisPipelineError(f"Redis is unreachable: {error!r}") from error
        self._connection = connection
        return connection

    async def _dial(self) -> _Connection:
        def made() -> _Connection:
            return _Connection(self.loop, self.timeout_s)

        options = self.options
        if "path" in options:
            _, connection = await self.loop.create_unix_connection(made, options["path"])
            return connection
        host, port = options.get("host", "localhost"), options.get("port", 6379)
        tls = options.get("connection_class") is SSLConnection
        secure = ssl.create_default_context() if tls else None
        _, connection = await self.loop.create_connection(made, host, port, ssl=secure)
        return connection

    def _set_up(self) -> list[tuple[str | int, ...]]:
        options: dict[str, Any] = self.options
        commands: list[tuple[str | int, ...]] = []
        if options.get("password") is not None:
            username, password = options.get("username"), options["password"]
            commands.append(
                ("AUTH", password) if username is None else ("AUTH", username, password)
            )
        if options.get("db"):
            commands.append(("SELECT", int(options["db"])))
        return commands
