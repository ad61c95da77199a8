"""The handheld's line protocol, its terminal (what each line prints) and its HTTP adapter."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.doubles import SecondsClock
from tests.parking_backend_fake import LOT, FakeParkingBackend
from validators.backend import BackendRefused, BackendUnavailable
from validators.handheld import Handheld
from validators.handheld_cli import Terminal
from validators.handheld_outbox import HandheldOutbox
from validators.handheld_printer import HandheldPrinter
from validators.handheld_protocol import (
    BadLine,
    Check,
    End,
    Flush,
    Help,
    Scanned,
    Start,
    parse_line,
)
from validators.http_parking import HttpParkingBackend

RETRY_WAIT_S = 10.0
CODE = "TL1:6BFOXN *1$ABC"  # Base45 may hold spaces; the protocol keeps them


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (f"start 29A-123.45 car 2 {CODE}\n", Start("29A-123.45", "car", 120, CODE)),
        ("START 29 A 123 45 Motorbike 1.5\r\n", Start("29 A 123 45", "motorbike", 90, None)),
        ("start 29A12345 large 0.25", Start("29A12345", "large", 15, None)),
        ("end 29A-123.45", End("29A-123.45")),
        ("check  30E 678 90 ", Check("30E 678 90")),
        (f"{CODE}\n", Scanned(CODE)),
        ("flush", Flush()),
        ("help", Help()),
        ("", None),
        ("   \n", None),
        ("# a comment", None),
    ],
)
def test_each_line_of_the_protocol_reads_as_its_command(line: str, command: object) -> None:
    assert parse_line(line) == command


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("park 29A12345", "unknown_command"),
        ("flush now", "unknown_command"),
        ("start 29A12345 car", "start_incomplete"),
        (f"start car 2 {CODE}", "start_incomplete"),
        ("start 29A12345 bicycle 2", "vehicle_class_unknown"),
        ("start 29A12345 car two", "hours_invalid"),
        ("start 29A12345 car 0", "hours_invalid"),
        ("start 29A12345 car -1", "hours_invalid"),
        ("start 29A12345 car 25", "hours_invalid"),
        ("start 29A12345 car NaN", "hours_invalid"),
        ("start 29A12345 car 0.001", "hours_invalid"),
        ("end", "plate_missing"),
        ("check " + "9" * 21, "plate_unreadable"),
        ("end 29A\x0712345", "plate_unreadable"),
        ("start 29A12345 car 2 TL1:" + "A" * 600, "line_too_long"),
    ],
)
def test_a_line_that_is_no_command_is_refused_with_a_stable_code(line: str, code: str) -> None:
    with pytest.raises(BadLine) as refused:
        parse_line(line)
    assert refused.value.code == code


def terminal(
    backend: FakeParkingBackend, tmp_path: Path, *, json_lines: bool
) -> tuple[Terminal, io.StringIO]:
    out = io.StringIO()
    outbox = HandheldOutbox(tmp_path / "handheld.sqlite3")
    device = Handheld(outbox, backend, device_id=3, lot_id=LOT, clock=SecondsClock())
    return Terminal(device, HandheldPrinter(json_lines=json_lines, plain=True, out=out)), out


def json_lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_prints_one_line_per_action_with_the_backends_verdict(tmp_path: Path) -> None:
    backend = FakeParkingBackend(failures_to_come=1)
    term, out = terminal(backend, tmp_path, json_lines=True)

    term.handle(f"start 29A-123.45 car 2 {CODE}")  # the link is down: queued
    term.handle(CODE)  # the same code scanned alone, then used by a start without one
    term.handle("start 30E-678.90 car 1")
    term.handle("check 29A-123.45")
    term.handle("end 29A-123.45")
    term.handle("start 30E-678.90 car 1")  # no code scanned since the last start
    term.handle("bogus")

    lines = json_lines(out)
    assert [(line.get("seq"), line["status"], line.get("code")) for line in lines] == [
        (1, "queued", "backend_unavailable"),
        (1, "started", None),  # replayed first, in order, when the next line is sent
        (2, "refused", "code_already_used"),
        (None, "paid", None),
        (3, "ended", None),
        (None, "invalid", "code_missing"),
        (None, "invalid", "unknown_command"),
    ]
    assert lines[1]["request_id"] == "handheld-3-1"
    assert lines[1]["session"]["plate"] == "29A-123.45"
    assert (lines[3]["action"], lines[3]["plate"]) == ("check", "29A-123.45")
    assert lines[3]["session_id"] == lines[1]["session"]["session_id"]
    assert lines[4]["record"]["fee_vnd"] == 25_000


def test_plain_lines_say_what_happened_to_each_action(tmp_path: Path) -> None:
    term, out = terminal(FakeParkingBackend(), tmp_path, json_lines=False)
    term.handle(f"start 29A-123.45 car 2 {CODE}")
    term.handle("end 29A-123.45")
    term.handle("end 29A-123.45")

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("STARTED 29A-123.45 · seq 1 · paid until ")
    assert lines[1] == "ENDED 29A-123.45 · seq 2 · fee 25,000 VND"
    assert lines[2].startswith("REFUSED end 29A-123.45 · seq 3 · no_open_session: ")


def test_the_end_of_input_drains_with_a_backoff_and_gives_up_after_its_attempts(
    tmp_path: Path,
) -> None:
    backend = FakeParkingBackend(failures_to_come=10)
    term, _ = terminal(backend, tmp_path, json_lines=True)
    term.handle("end 29A-123.45")
    slept: list[float] = []

    gave_up = term.drain(3, sleep=slept.append)
    backend.failures_to_come = 1
    delivered = term.drain(3, sleep=slept.append)

    assert (gave_up.pending, delivered.pending) == (1, 0)
    assert len(slept) == 2 + 1
    assert 0.5 <= slept[0] <= 1.0
    assert 1.0 <= slept[1] <= 2.0


def test_the_http_adapter_sends_the_request_id_as_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/enforcement"):
            return httpx.Response(200, json={"status": "unpaid", "session_id": None})
        return httpx.Response(201, json={"session_id": "s-1"})

    http = HttpParkingBackend(
        "http://backend.test", "tlk_op", transport=httpx.MockTransport(answer)
    )
    body = {"start_id": "handheld-3-1", "plate": "29A12345"}
    assert http.start_session(body, idempotency_key="handheld-3-1") == {"session_id": "s-1"}
    http.end_session("s-1", {"end_id": "handheld-3-2"}, idempotency_key="handheld-3-2")
    assert http.enforcement(LOT, "29A 123 45")["status"] == "unpaid"

    assert [(r.method, r.url.path) for r in seen] == [
        ("POST", "/v1/parking/sessions"),
        ("POST", "/v1/parking/sessions/s-1/end"),
        ("GET", "/v1/parking/enforcement"),
    ]
    assert [r.headers.get("idempotency-key") for r in seen] == [
        "handheld-3-1",
        "handheld-3-2",
        None,
    ]
    assert json.loads(seen[0].content) == body
    assert dict(seen[2].url.params) == {"lot_id": LOT, "plate": "29A 123 45"}
    assert {r.headers["authorization"] for r in seen} == {"Bearer tlk_op"}


@pytest.mark.parametrize(("status", "error"), [(502, BackendUnavailable), (409, BackendRefused)])
def test_the_http_adapter_retries_5xx_and_reports_4xx_with_its_code(
    status: int, error: type[Exception]
) -> None:
    problem = {"code": "session_already_open", "detail": "parked already"}
    transport = httpx.MockTransport(lambda _r: httpx.Response(status, json=problem))
    http = HttpParkingBackend("http://backend.test", "tlk_op", transport=transport)
    with pytest.raises(error) as raised:
        http.start_session({}, idempotency_key="handheld-3-1")
    if isinstance(raised.value, BackendRefused):
        assert (raised.value.problem_code, raised.value.detail) == (
            "session_already_open",
            "parked already",
        )


def test_a_check_without_a_backend_says_so_and_queues_nothing(tmp_path: Path) -> None:
    backend = FakeParkingBackend(failures_to_come=1)
    term, out = terminal(backend, tmp_path, json_lines=True)

    term.handle("check 29A-123.45")

    [line] = json_lines(out)
    assert (line["action"], line["status"], line["code"]) == (
        "check",
        "unavailable",
        "backend_unavailable",
    )
    assert term.handheld.outbox.last_seq() == 0


def test_what_is_queued_is_sent_again_while_no_line_comes(tmp_path: Path) -> None:
    backend = FakeParkingBackend(failures_to_come=2)
    term, out = terminal(backend, tmp_path, json_lines=True)
    term.handle("end 29A-123.45")  # queued: the link is down
    stop = threading.Event()
    retrying = threading.Thread(target=term.keep_sending, args=(stop, 0.01), daemon=True)

    retrying.start()
    deadline = time.monotonic() + RETRY_WAIT_S
    while term.handheld.outbox.pending_count() and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    retrying.join(RETRY_WAIT_S)

    assert [line["status"] for line in json_lines(out)] == ["queued", "refused"]
    assert backend.calls == [("enforcement", "29A-123.45")]
