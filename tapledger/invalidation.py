"""The invalidation channel across processes: PostgreSQL `LISTEN/NOTIFY`.

Why PostgreSQL and not Redis pub/sub: every production deployment runs on PostgreSQL, while Redis
is optional; the news comes from the database that committed the change, so there is no second
service whose outage would silently let a revoked token or a blocked card through; and a
`NOTIFY` is delivered only if its transaction commits, in commit order, to every listening
session. Like Redis pub/sub it keeps nothing for a listener that is away, so a listener that
reconnects announces `MessagesMayBeLost` and every cache reads again; the caches' own timers
(`PRINCIPAL_CACHE_TTL_S`, `TRUST_REFRESH_S`) remain the fallback for a message that never left.

On the embedded SQLite store the product runs on one machine with one serving process, and
`LocalChannel` delivers in-process after the local commit; a change made by another process
there (the CLI) reaches the server through the timers only.
"""

from __future__ import annotations

import json
import logging
import threading
from uuid import uuid4

import psycopg
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from ticketing.cards.application.invalidation import (
    Invalidation,
    LocalChannel,
    MalformedInvalidation,
    MessagesMayBeLost,
    Subscriber,
    decode,
    encode,
)

CHANNEL = "tapledger_invalidations"
# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; ours are a few hundred.
PAYLOAD_MAX_BYTES = 7_900
# How long the listener waits for news before it checks whether it should stop.
LISTEN_POLL_S = 0.5
# Between attempts to listen again after the connection was lost.
RECONNECT_BACKOFF_S = 1.0
LISTENER_STOP_TIMEOUT_S = 5.0

log = logging.getLogger(__name__)


class PostgresChannel:
    """`ticketing.cards.application.invalidation.InvalidationChannel` over `LISTEN/NOTIFY`.

    `publish` delivers to this process's subscribers in the caller's thread, then notifies the
    others; the listener thread (`start`) delivers what the other processes publish."""

    def __init__(self, conninfo: str, engine: Engine) -> None:
        self._conninfo = conninfo
        self._engine = engine
        self._local = LocalChannel()
        # Marks this process's messages, which it delivered already when it published them.
        self._origin = uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()

    def subscribe(self, subscriber: Subscriber) -> None:
        self._local.subscribe(subscriber)

    def publish(self, message: Invalidation) -> None:
        self._local.deliver(message)
        payload = json.dumps({"origin": self._origin, **encode(message)}, separators=(",", ":"))
        if len(payload.encode()) > PAYLOAD_MAX_BYTES:
            log.error(
                "invalidation too large to send (%d bytes); timers will catch up", len(payload)
            )
            return
        try:
            with self._engine.begin() as conn:
                conn.execute(select(func.pg_notify(CHANNEL, payload)))
        except SQLAlchemyError:
            # The change itself is committed; other processes see it when their timers expire.
            log.exception("could not send an invalidation; other processes catch up by timer")

    def start(self) -> None:
        """Listens in a daemon thread until `close`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="invalidations", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(LISTENER_STOP_TIMEOUT_S)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error:
                log.warning("invalidation listener lost its connection; listening again")
            except Exception:  # the listener must outlive any fault, or news stops for good
                log.exception("invalidation listener failed; listening again")
            self.listening.clear()
            self._stop.wait(RECONNECT_BACKOFF_S)

    def _listen(self) -> None:
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            # Whatever was sent before this LISTEN was not heard: every cache reads again.
            self._deliver(MessagesMayBeLost())
            self.listening.set()
            while not self._stop.is_set():
                for notify in conn.notifies(timeout=LISTEN_POLL_S):
                    self._received(notify.payload)

    def _received(self, payload: str) -> None:
        try:
            origin = json.loads(payload).get("origin")
            if origin == self._origin:
                return
            message = decode(payload)
        except (ValueError, AttributeError, MalformedInvalidation):
            log.warning("ignored a malformed invalidation: %.200s", payload)
            return
        self._deliver(message)

    def _deliver(self, message: Invalidation) -> None:
        try:
            self._local.deliver(message)
        except Exception:  # a subscriber's bug must not stop the news for the others
            log.exception("an invalidation subscriber failed on %s", type(message).__name__)
