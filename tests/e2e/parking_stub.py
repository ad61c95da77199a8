"""The parking API of docs/parking-api.md, faked inside the browser with Playwright's routing.

The attendant's page is tested against it while the real routes are being built: it answers
starts, ends, the enforcement lookup and a lot's open sessions as the contract says, applies
each request id once (a repeat answers `200` with the first result), and can be told to lose
the network, to fail with a 5xx, or to apply a request and lose its answer. It counts what it
was sent, per Idempotency-Key, so a test can check that every action took effect exactly once.
Anything the contract does not describe is answered `501`, so a page asking for it fails loudly.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Route

from parking.domain.errors import PlateUnreadable
from parking.domain.plate import normalise_plate
from tapledger.http.problems import PROBLEM_MEDIA_TYPE, problem_body

PARKING_ROUTES = "**/v1/parking/**"
OPERATOR_ID = "iparking"
NOT_IMPLEMENTED = 501
_END_PATH = re.compile(r"^/v1/parking/sessions/([^/]+)/end$")
# A status and a JSON body; a refusal's body holds `code`, `detail` and the problem's extras.
Answer = tuple[int, dict[str, Any]]


@dataclass(frozen=True)
class Sent:
    """One request the page made, as the stub saw it."""

    method: str
    path: str
    query: dict[str, str]
    key: str | None
    body: dict[str, Any] | None


@dataclass
class ParkingStub:
    """A parking server with one operator token; see the module docstring."""

    token: str
    down: bool = False
    # Creating requests (those with an Idempotency-Key) to answer with a 503 first.
    failing_next: int = 0
    # Creating requests to apply and then lose the answer of, as a dropped connection would.
    losing_next_answers: int = 0
    refused_codes: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    by_key: Counter[str] = field(default_factory=Counter)
    _answers: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)

    def handle(self, route: Route) -> None:
        request = route.request
        url = urlsplit(request.url)
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        body = request.post_data_json if request.method == "POST" else None
        key = request.headers.get("idempotency-key")
        if self.down:
            route.abort("internetdisconnected")
            return
        self.sent.append(Sent(request.method, url.path, query, key, body))
        if key is not None:
            self.by_key[key] += 1
        if key is not None and self.failing_next > 0:
            self.failing_next -= 1
            _problem(route, 503, "service_unavailable", "the stub is failing on purpose")
            return
        if request.headers.get("authorization") != f"Bearer {self.token}":
            _problem(route, 401, "not_authenticated", "a valid bearer token is required")
            return
        status, answer = self._answer(request.method, url.path, query, body)
        if status in (200, 201) and request.method == "POST" and self.losing_next_answers > 0:
            self.losing_next_answers -= 1
            route.abort("connectionreset")
            return
        if status >= 400:
            _problem(route, status, answer["code"], answer["detail"], answer.get("extra", {}))
            return
        route.fulfill(status=status, content_type="application/json", body=json.dumps(answer))

    def open_sessions(self, lot_id: str) -> list[dict[str, Any]]:
        return [s for s in self.sessions.values() if s["lot_id"] == lot_id and s["state"] == "open"]

    def posts(self) -> list[Sent]:
        return [sent for sent in self.sent if sent.method == "POST"]

    def _answer(
        self, method: str, path: str, query: dict[str, str], body: dict[str, Any] | None
    ) -> Answer:
        if method == "POST" and path == "/v1/parking/sessions" and body is not None:
            return self._once(body["start_id"], body, lambda: self._start(body))
        ended = _END_PATH.match(path)
        if method == "POST" and ended and body is not None:
            return self._once(body["end_id"], body, lambda: self._end(ended.group(1)))
        if method == "GET" and path == "/v1/parking/enforcement":
            return self._enforcement(query["lot_id"], query["plate"])
        if method == "GET" and path == "/v1/parking/sessions" and query.get("state") == "open":
            items = sorted(
                self.open_sessions(query["lot_id"]), key=lambda s: s["started_at"], reverse=True
            )
            return 200, {"items": items}
        return NOT_IMPLEMENTED, _refusal("not_implemented", f"the stub has no {method} {path}")

    def _once(self, request_id: str, body: dict[str, Any], apply: Callable[[], Answer]) -> Answer:
        """The contract's request ids: a repeat with the same body answers what the first did."""
        if request_id in self._answers:
            first_body, first_answer = self._answers[request_id]
            if first_body != body:
                return 409, _refusal("request_id_reused", "this id was used with another body")
            return 200, first_answer
        status, answer = apply()
        if status < 400:
            self._answers[request_id] = (body, answer)
        return status, answer

    def _start(self, body: dict[str, Any]) -> Answer:
        try:
            plate = normalise_plate(body["plate"])
        except PlateUnreadable as unreadable:
            return 422, _refusal("plate_unreadable", str(unreadable))
        if body.get("code") is None:
            return 422, _refusal("payer_missing", "give account_id or code")
        refused = self.refused_codes.get(body["code"])
        if refused is not None:
            return 422, _refusal(refused, "the code was refused")
        for session in self.open_sessions(body["lot_id"]):
            if session["plate"] == plate.compact:
                detail = f"{plate.display} already has an open session here"
                return 409, _refusal(
                    "session_already_open", detail, session_id=session["session_id"]
                )
        session_id = f"ps-{len(self.sessions) + 1}"
        session = {
            "session_id": session_id,
            "lot_id": body["lot_id"],
            "operator_id": OPERATOR_ID,
            "plate": plate.compact,
            "plate_display": plate.display,
            "vehicle_class": body["vehicle_class"],
            "account_id": "acc-1",
            "state": "open",
            "started_at": f"2026-12-06T03:00:{len(self.sessions):02d}+00:00",
            "paid_until": body["paid_until"],
            "held_vnd": 30_000,
            "started_by": "attendant",
            "ended_at": None,
            "fee_vnd": None,
            "unpaid_vnd": None,
        }
        self.sessions[session_id] = session
        return 201, session

    def _end(self, session_id: str) -> Answer:
        session = self.sessions.get(session_id)
        if session is None:
            return 404, _refusal("session_not_found", f"no session {session_id}")
        if session["state"] == "ended":
            return 409, _refusal("session_ended", f"session {session_id} has ended")
        session.update(state="ended", ended_at="2026-12-06T04:00:00+00:00", fee_vnd=25_000)
        session.update(unpaid_vnd=0)
        return 200, {"session": session, "record": {"session_id": session_id, "fee_vnd": 25_000}}

    def _enforcement(self, lot_id: str, plate_text: str) -> Answer:
        try:
            plate = normalise_plate(plate_text)
        except PlateUnreadable as unreadable:
            return 422, _refusal("plate_unreadable", str(unreadable))
        answer: dict[str, Any] = {"lot_id": lot_id, "plate": plate.compact, "status": "unpaid"}
        answer |= {"paid_until": None, "session_id": None}
        for session in self.open_sessions(lot_id):
            if session["plate"] == plate.compact:
                answer |= {"status": "paid", "paid_until": session["paid_until"]}
                answer["session_id"] = session["session_id"]
        return 200, answer


def _refusal(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "detail": detail, "extra": extra}


def _problem(route: Route, status: int, code: str, detail: str, extra: Any = None) -> None:
    body = problem_body(status, code, detail, **(extra or {}))
    route.fulfill(status=status, content_type=PROBLEM_MEDIA_TYPE, body=json.dumps(body))
