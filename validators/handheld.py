"""The parking handheld: an attendant's starts and ends, queued durably and sent exactly once.

Each action is written to the outbox (`validators.handheld_outbox`) under the device's next seq
before anything is sent; `replay` then sends the pending actions oldest first. A start is
`POST /v1/parking/sessions` with `start_id` = its request id; an end looks up the plate's open
session (`GET /v1/parking/enforcement`), remembers it, and posts `/end` with `end_id` = its
request id; both carry the same text as `Idempotency-Key`. So a request whose answer was lost is
sent again with the same id and body, and the backend applies it once.

What stops a replay, leaving the action and all after it queued in order: no usable answer
(`BackendUnavailable`: a connection error, a timeout, a 5xx, or `409 request_in_progress`
while the first attempt under the same key still runs), or a 401/403, which says the
handheld's token is wrong, not the action (the actions wait until someone fixes the token).
Any other refusal (a 4xx with its problem code) is that action's verdict, stored and reported
like a success: sending it again could not change it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from ticketing.shared.domain.invariants import require
from validators.backend import BackendError, BackendRefused, BackendUnavailable
from validators.handheld_outbox import END, START, HandheldOutbox, StoredAction
from validators.parking_backend import ParkingBackend

# Actions sent by one `replay`; the caller replays again while some are pending.
REPLAY_BATCH_MAX = 100
# A paid stay the handheld starts: at most a day (a lot's own maximum may be shorter).
STAY_MINUTES_MAX = 24 * 60
# Refusals about the handheld itself, not the action: its token is missing, wrong or revoked.
SETUP_REFUSALS = frozenset({401, 403})
# A 409 that means "not yet": the first attempt under this Idempotency-Key is still running
# (its answer was lost, and the retry came quickly). The action waits, as for no answer.
RETRY_LATER_CODES = frozenset({"request_in_progress"})
NO_OPEN_SESSION = "no_open_session"


@dataclass(frozen=True)
class Verdict:
    """The backend's final answer for one action: started, ended, or refused with its code."""

    seq: int
    request_id: str
    action: str
    plate: str
    status: str  # started | ended | refused
    code: str | None = None
    detail: str | None = None
    http_status: int | None = None
    session: dict[str, Any] | None = None
    record: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class Replayed:
    """What one replay answered, how many actions still wait, and why it stopped if it did."""

    verdicts: list[Verdict]
    pending: int
    error: BackendError | None = None

    @property
    def setup_refused(self) -> bool:
        return isinstance(self.error, BackendRefused)


class Handheld:
    """One attendant's handheld at one lot, with its device id and outbox."""

    def __init__(
        self,
        outbox: HandheldOutbox,
        backend: ParkingBackend,
        *,
        device_id: int,
        lot_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self._backend = backend
        self.device_id = device_id
        self.lot_id = lot_id
        self._clock = clock

    def start(self, plate: str, vehicle_class: str, minutes: int, code: str) -> StoredAction:
        """Queues a start paid for `minutes` from now by the scanned `code`."""
        require(1 <= minutes <= STAY_MINUTES_MAX, "a stay the protocol bounds")
        now = int(self._clock())
        paid_until = datetime.fromtimestamp(now + minutes * 60, UTC).isoformat()
        fields = {
            "lot_id": self.lot_id,
            "plate": plate,
            "vehicle_class": vehicle_class,
            "paid_until": paid_until,
            "code": code,
        }
        return self.outbox.append(START, fields, device_id=self.device_id, at=now)

    def end(self, plate: str) -> StoredAction:
        """Queues the end of the plate's open session in the lot."""
        fields = {"lot_id": self.lot_id, "plate": plate}
        return self.outbox.append(END, fields, device_id=self.device_id, at=int(self._clock()))

    def check(self, plate: str) -> dict[str, Any]:
        """The plate's enforcement status in the lot, asked now (not queued: a read)."""
        return self._backend.enforcement(self.lot_id, plate)

    def replay(self, limit: int = REPLAY_BATCH_MAX) -> Replayed:
        """Sends pending actions oldest first until one gets no usable answer."""
        verdicts: list[Verdict] = []
        for action in self.outbox.pending(limit):
            try:
                verdict = self._send(action)
            except BackendRefused as error:
                if error.status in SETUP_REFUSALS:
                    return Replayed(verdicts, self.outbox.pending_count(), error)
                if error.problem_code in RETRY_LATER_CODES:
                    later = BackendUnavailable(f"{error}; sent again later")
                    return Replayed(verdicts, self.outbox.pending_count(), later)
                verdict = _refused(action, error.problem_code, error.detail, error.status)
            except BackendUnavailable as error:
                return Replayed(verdicts, self.outbox.pending_count(), error)
            self.outbox.finish(action.seq, verdict.to_json(), at=int(self._clock()))
            verdicts.append(verdict)
        return Replayed(verdicts, self.outbox.pending_count())

    def _send(self, action: StoredAction) -> Verdict:
        if action.action == START:
            # Queued while offline, the start counts from when it was made (docs/parking-api.md).
            body = {"start_id": action.request_id, **action.fields, "started_at": _made(action)}
            session = self._backend.start_session(body, idempotency_key=action.request_id)
            return _verdict(action, "started", session=session)
        session_id = action.session_id
        if session_id is None:
            found = self._backend.enforcement(action.fields["lot_id"], action.plate)
            if found.get("session_id") is None:
                detail = "the plate has no open session in this lot"
                return _refused(action, NO_OPEN_SESSION, detail, None)
            session_id = str(found["session_id"])
            # Remembered before the end is posted: a retry ends this session with the same id.
            self.outbox.resolve(action.seq, session_id)
        ended = self._backend.end_session(
            session_id,
            {"end_id": action.request_id, "ended_at": _made(action)},
            idempotency_key=action.request_id,
        )
        return _verdict(action, "ended", session=ended.get("session"), record=ended.get("record"))


def _made(action: StoredAction) -> str:
    """When the attendant made the action: the device's clock at queueing, in UTC."""
    return datetime.fromtimestamp(action.queued_at, UTC).isoformat()


def _verdict(action: StoredAction, status: str, **answer: Any) -> Verdict:
    return Verdict(action.seq, action.request_id, action.action, action.plate, status, **answer)


def _refused(action: StoredAction, code: str, detail: str, http_status: int | None) -> Verdict:
    return _verdict(action, "refused", code=code, detail=detail, http_status=http_status)
