"""Driving an ASGI app by hand: a body that arrives in scripted chunks, and the answer it got.

The test client reads a whole body before the app sees it; these helpers let a test see how much
of a body the app asked for, which is what a size limit or an early refusal is about."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message

CLIENT_ADDRESS = ("203.0.113.7", 50000)


@dataclass
class ScriptedBody:
    """Chunks handed to the app one `receive` at a time; counts what the app pulled."""

    chunks: Iterator[bytes]
    pulled_bytes: int = 0
    receive_calls: int = 0

    async def receive(self) -> Message:
        self.receive_calls += 1
        chunk = next(self.chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        self.pulled_bytes += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}


@dataclass
class Answer:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    def json(self) -> Any:
        return json.loads(self.body)


def stream(chunk_bytes: int, total_bytes: int) -> Iterator[bytes]:
    """A body in chunks, as a client streaming without a Content-Length sends it. Tests make it
    several times the limit under test rather than endless, so that an app that reads it all
    fails the test instead of filling the memory of the machine."""
    for _ in range(total_bytes // chunk_bytes):
        yield b" " * chunk_bytes


def call(
    app: ASGIApp, method: str, path: str, body: ScriptedBody, headers: dict[str, str]
) -> Answer:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": CLIENT_ADDRESS,
        "server": ("testserver", 80),
        "state": {},
    }
    answer = Answer()

    async def run() -> None:
        await app(scope, body.receive, answer.send)

    asyncio.run(run())
    return answer
