"""HTTP idempotency: a request retried with the same `Idempotency-Key` takes effect once.

The first request claims the key, runs, and leaves its response there; a repeat gets that
response back byte for byte instead of running again. Keys are scoped by principal and route, so
two callers, or two routes, never share one; only authenticated requests get here with a
principal (`tapledger.http.authentication`), and a request without one stores nothing.

Records live in hot state, which may come back empty. That is harmless where the request carries
its own id (a transfer id, a payment reference), but a creation without one (an account, a
token) would run again. The routes named `durable_routes` so keep their records in a SQL table
(`tapledger.http.idempotency_records`) with the same time-to-live.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, Protocol

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tapledger.http.hotstate import HotState, HotStateUnavailable, check_ttl
from tapledger.http.problems import problem_response
from ticketing.shared.access import PRINCIPAL_STATE_KEY, Principal

IDEMPOTENCY_KEY_MAX_CHARS = 128
IDEMPOTENT_BODY_MAX_BYTES = 1024 * 1024
IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000
# Longer than any request should run; if a process dies mid-request, its claim frees itself.
IN_PROGRESS_TTL_MS = 60 * 1000
# Base64 grows a body by a third; this leaves room in one hot-state value for the headers.
IDEMPOTENT_RESPONSE_MAX_BYTES = 128 * 1024
# A finished record can expire between a refused claim and the read that follows; one more claim
# settles it, and a key that flickers beyond that is treated as in progress.
CLAIM_ATTEMPTS_MAX = 2
HOT_STATE_RETRY_AFTER_S = 1
IDEMPOTENT_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Headers that describe the result; the rest (date, server, length) are rebuilt on replay.
REPLAYED_HEADERS = frozenset({b"content-type", b"location", b"content-location", b"etag"})
VISIBLE_ASCII_MIN = 0x21
VISIBLE_ASCII_MAX = 0x7E
IN_PROGRESS_MARK = b"in-progress:"
SERVER_ERROR_STATUS_MIN = 500

logger = logging.getLogger(__name__)
_P = ParamSpec("_P")


class IdempotencyRecordsUnavailable(Exception):
    """The durable record store cannot be reached: an operating condition, like hot state's."""


class RecordStore(Protocol):
    """Where idempotency records live: the part of `HotState` this middleware uses."""

    def put_if_absent(self, key: str, value: bytes, *, ttl_ms: int) -> bool: ...

    def put(self, key: str, value: bytes, *, ttl_ms: int) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def delete(self, key: str) -> None: ...


_STORE_UNAVAILABLE = (HotStateUnavailable, IdempotencyRecordsUnavailable)


@dataclass
class _Captured:
    """The response of the first run, as it went out."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    overflowed: bool = False
    settled: bool = False

    def record(self, fingerprint: str) -> bytes:
        kept = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in self.headers]
        body = None if self.overflowed else base64.b64encode(self.body).decode("ascii")
        stored = {"fingerprint": fingerprint, "status": self.status, "headers": kept, "body": body}
        return json.dumps(stored, separators=(",", ":")).encode("ascii")


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


def _valid_key(key: str) -> bool:
    return 1 <= len(key) <= IDEMPOTENCY_KEY_MAX_CHARS and all(
        VISIBLE_ASCII_MIN <= ord(char) <= VISIBLE_ASCII_MAX for char in key
    )


def _scope_key(scope: Scope, principal: Principal, key: str) -> str:
    # JSON keeps the parts apart whatever characters the path holds; hashing bounds the length.
    parts = json.dumps([principal.token_id, scope["method"], scope["path"], key])
    return "idempotency:" + hashlib.sha256(parts.encode("utf-8")).hexdigest()


def _fingerprint(scope: Scope, body: bytes) -> str:
    # The query string counts as part of the request: the same key with another query is a
    # different request, not a retry.
    query: bytes = scope.get("query_string", b"")
    digest = hashlib.sha256(len(query).to_bytes(8, "big") + query)
    digest.update(body)
    return digest.hexdigest()


async def _read_body(headers: Headers, receive: Receive) -> bytes:
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > IDEMPOTENT_BODY_MAX_BYTES:
        raise _BodyTooLarge
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        body += message.get("body", b"")
        if len(body) > IDEMPOTENT_BODY_MAX_BYTES:
            raise _BodyTooLarge
        if not message.get("more_body", False):
            return bytes(body)


def _replaying(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class IdempotencyMiddleware:
    """Pure ASGI middleware giving `Idempotency-Key` semantics to unsafe methods.

    It fails closed: a client that sent a key asked for protection against double effects, so
    when hot state is unavailable the request is refused with 503 rather than run unprotected.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        hot_state: HotState,
        ttl_ms: int = IDEMPOTENCY_TTL_MS,
        durable: RecordStore | None = None,
        durable_routes: Iterable[tuple[str, re.Pattern[str]]] = (),
    ) -> None:
        check_ttl(ttl_ms)
        self.app = app
        self.hot_state = hot_state
        self.ttl_ms = ttl_ms
        self.durable = durable
        self.durable_routes = tuple(durable_routes)

    def _store_for(self, scope: Scope) -> RecordStore:
        if self.durable is not None:
            for method, path in self.durable_routes:
                if scope["method"] == method and path.fullmatch(scope["path"]):
                    return self.durable
        return self.hot_state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in IDEMPOTENT_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        keys = headers.getlist("idempotency-key")
        principal: Principal | None = scope.get("state", {}).get(PRINCIPAL_STATE_KEY)
        if not keys or principal is None:
            await self.app(scope, receive, send)
            return
        if len(keys) > 1 or not _valid_key(keys[0]):
            detail = (
                f"Idempotency-Key must be one header of 1 to {IDEMPOTENCY_KEY_MAX_CHARS} "
                "visible ASCII characters"
            )
            await problem_response(400, "invalid_idempotency_key", detail)(scope, receive, send)
            return
        try:
            body = await _read_body(headers, receive)
        except _ClientGone:
            return
        except _BodyTooLarge:
            detail = (
                f"an idempotent request body may have at most {IDEMPOTENT_BODY_MAX_BYTES} bytes"
            )
            await problem_response(413, "body_too_large", detail)(scope, receive, send)
            return
        scope_key = _scope_key(scope, principal, keys[0])
        fingerprint = _fingerprint(scope, body)
        store = self._store_for(scope)
        try:
            claimed, stored = await _claim(store, scope_key, fingerprint)
        except _STORE_UNAVAILABLE as error:
            logger.exception("idempotency records unavailable; refusing an idempotent request")
            retry = {"Retry-After": str(HOT_STATE_RETRY_AFTER_S)}
            detail = "idempotency keys cannot be checked right now; retry with the same key"
            code = (
                "hot_state_unavailable"
                if isinstance(error, HotStateUnavailable)
                else "idempotency_records_unavailable"
            )
            response = problem_response(503, code, detail, headers=retry)
            await response(scope, receive, send)
            return
        if claimed:
            record = _Record(store, scope_key, fingerprint)
            await self._run_first(scope, _replaying(body, receive), send, record)
        else:
            await self._answer_repeat(stored, fingerprint, scope, receive, send)

    async def _run_first(self, scope: Scope, receive: Receive, send: Send, record: _Record) -> None:
        captured = _Captured()

        async def capturing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured.status = message["status"]
                raw: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                captured.headers = [(k, v) for k, v in raw if k.lower() in REPLAYED_HEADERS]
            elif message["type"] == "http.response.body":
                if not captured.overflowed:
                    captured.body += message.get("body", b"")
                if len(captured.body) > IDEMPOTENT_RESPONSE_MAX_BYTES:
                    captured.overflowed = True
                    captured.body.clear()
                if not message.get("more_body", False):
                    # Settled before the last byte leaves, so a client holding the whole
                    # response can count on a retry being answered from the record.
                    await self._settle(record, captured)
            await send(message)

        try:
            await self.app(scope, receive, capturing_send)
        finally:
            if not captured.settled:
                # The app raised or ended without a response, which the client sees as a 500:
                # release the claim as after any server error. Shielded, so that a cancelled
                # request still releases it rather than leave it to expire.
                captured.settled = True
                with anyio.CancelScope(shield=True):
                    await _write(record.store.delete, record.scope_key)

    async def _settle(self, record: _Record, captured: _Captured) -> None:
        captured.settled = True
        if captured.status >= SERVER_ERROR_STATUS_MIN:
            # Handlers commit nothing when they fail with 5xx, so releasing the claim lets the
            # client's retry run again, which is what it needs.
            await _write(record.store.delete, record.scope_key)
        else:
            stored = captured.record(record.fingerprint)
            await _write(record.store.put, record.scope_key, stored, ttl_ms=self.ttl_ms)

    async def _answer_repeat(
        self, stored: bytes | None, fingerprint: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if stored is None:
            # The key kept changing hands while we looked; as good as in progress.
            detail = "a request with this Idempotency-Key is still running; retry later"
            await problem_response(409, "request_in_progress", detail)(scope, receive, send)
            return
        if stored.startswith(IN_PROGRESS_MARK):
            first: dict[str, Any] = {"fingerprint": stored[len(IN_PROGRESS_MARK) :].decode()}
        else:
            first = json.loads(stored)
        if first["fingerprint"] != fingerprint:
            detail = "this Idempotency-Key was used for a request with another body or query"
            await problem_response(422, "idempotency_key_reused", detail)(scope, receive, send)
        elif "status" not in first:
            detail = "a request with this Idempotency-Key is still running; retry later"
            await problem_response(409, "request_in_progress", detail)(scope, receive, send)
        elif first["body"] is None:
            status = first["status"]
            detail = f"the request ran with status {status}; its response is too big to replay"
            response = problem_response(409, "response_not_replayable", detail)
            await response(scope, receive, send)
        else:
            await _replay(first, send)


@dataclass(frozen=True)
class _Record:
    """The claimed key of a first run, and the store it was claimed in."""

    store: RecordStore
    scope_key: str
    fingerprint: str


async def _claim(store: RecordStore, scope_key: str, fingerprint: str) -> tuple[bool, bytes | None]:
    mark = IN_PROGRESS_MARK + fingerprint.encode("ascii")
    for _ in range(CLAIM_ATTEMPTS_MAX):
        if await run_in_threadpool(store.put_if_absent, scope_key, mark, ttl_ms=IN_PROGRESS_TTL_MS):
            return True, None
        stored = await run_in_threadpool(store.get, scope_key)
        if stored is not None:
            return False, stored
    return False, None


async def _write(operation: Callable[_P, None], *args: _P.args, **kwargs: _P.kwargs) -> None:
    try:
        await run_in_threadpool(operation, *args, **kwargs)
    except _STORE_UNAVAILABLE:
        # The response is already decided and must still reach the client; the claim
        # expires after IN_PROGRESS_TTL_MS, and a retry after that runs again.
        logger.exception("idempotency records unavailable; a record was not settled")


async def _replay(first: dict[str, Any], send: Send) -> None:
    body = base64.b64decode(first["body"])
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in first["headers"]]
    headers.append((b"content-length", str(len(body)).encode("ascii")))
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": first["status"], "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
