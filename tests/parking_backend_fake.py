"""A fake parking backend for the handheld: docs/parking-api.md's promises, in memory.

A start or an end carries its own id: the same id with the same body answers what the first did,
another body is `409 request_id_reused`. One open session per plate per lot; a code pays once
(`409 code_already_used`); a code the test marks refused is `422 code_<reason>`. Failures are
scripted: `failures_to_come` fails requests before they do anything (the link is down), while
`lose_answers` applies a creating request and then fails as if its answer was lost on the way back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from validators.backend import BackendRefused, BackendUnavailable

LOT = "test-lot"
HOUR_VND = 25_000


def plate_key(plate: str) -> str:
    return "".join(ch for ch in plate.upper() if ch.isalnum())


@dataclass
class FakeParkingBackend:
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    starts: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)  # start_id
    ends: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # end_id
    used_codes: set[str] = field(default_factory=set)
    refused_codes: dict[str, str] = field(default_factory=dict)  # code -> reason
    calls: list[tuple[str, str]] = field(default_factory=list)  # (call, request id or plate)
    keys: list[str | None] = field(default_factory=list)  # Idempotency-Key of each creation
    failures_to_come: int = 0
    lose_answers: int = 0
    token_revoked: bool = False
    in_progress_to_come: int = 0  # answer 409 request_in_progress, as the key's middleware does

    def _enter(self, call: str, what: str) -> None:
        if self.token_revoked:
            raise BackendRefused(401, "unauthenticated", "the token is revoked")
        if self.failures_to_come:
            self.failures_to_come -= 1
            raise BackendUnavailable("the link is down")
        if self.in_progress_to_come:
            self.in_progress_to_come -= 1
            raise BackendRefused(409, "request_in_progress", "still running; retry later")
        self.calls.append((call, what))

    def _answer(self, answer: dict[str, Any]) -> dict[str, Any]:
        if self.lose_answers:
            self.lose_answers -= 1
            raise BackendUnavailable("the answer was lost on the way back")
        return answer

    def open_session(self, lot_id: str, plate: str) -> dict[str, Any] | None:
        for session in self.sessions.values():
            same_plate = plate_key(session["plate"]) == plate_key(plate)
            if session["lot_id"] == lot_id and same_plate and session["state"] == "open":
                return session
        return None

    def start_session(self, body: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        start_id = body["start_id"]
        self._enter("start", start_id)
        self.keys.append(idempotency_key)
        if start_id in self.starts:
            first, session_id = self.starts[start_id]
            if first != body:
                raise BackendRefused(409, "request_id_reused", "another body under this id")
            return self._answer(self.sessions[session_id])
        code = body["code"]
        if code in self.refused_codes:
            reason = self.refused_codes[code]
            raise BackendRefused(422, f"code_{reason}", f"the code is refused: {reason}")
        if code in self.used_codes:
            raise BackendRefused(409, "code_already_used", "the code paid for a session already")
        if self.open_session(body["lot_id"], body["plate"]) is not None:
            raise BackendRefused(409, "session_already_open", "the plate is parked already")
        session_id = str(uuid5(NAMESPACE_URL, start_id))
        self.used_codes.add(code)
        self.sessions[session_id] = {
            "session_id": session_id,
            "lot_id": body["lot_id"],
            "plate": body["plate"],
            "vehicle_class": body["vehicle_class"],
            "paid_until": body["paid_until"],
            "held_vnd": 2 * HOUR_VND,
            "state": "open",
            "started_by": "attendant",
        }
        self.starts[start_id] = (dict(body), session_id)
        return self._answer(self.sessions[session_id])

    def end_session(
        self, session_id: str, body: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        end_id = body["end_id"]
        self._enter("end", end_id)
        self.keys.append(idempotency_key)
        if end_id in self.ends:
            first_session, answer = self.ends[end_id]
            if first_session != session_id:
                raise BackendRefused(409, "request_id_reused", "another session under this id")
            return self._answer(answer)
        session = self.sessions.get(session_id)
        if session is None:
            raise BackendRefused(404, "session_not_found", session_id)
        if session["state"] != "open":
            raise BackendRefused(409, "session_ended", "the session has ended")
        session.update(state="ended", fee_vnd=HOUR_VND, unpaid_vnd=0)
        record = {"session_id": session_id, "fee_vnd": HOUR_VND}
        self.records[session_id] = record
        answer = {"session": dict(session), "record": record}
        self.ends[end_id] = (session_id, answer)
        return self._answer(answer)

    def enforcement(self, lot_id: str, plate: str) -> dict[str, Any]:
        self._enter("enforcement", plate)
        session = self.open_session(lot_id, plate)
        return {
            "lot_id": lot_id,
            "plate": plate,
            "status": "unpaid" if session is None else "paid",
            "paid_until": None if session is None else session["paid_until"],
            "session_id": None if session is None else session["session_id"],
        }
