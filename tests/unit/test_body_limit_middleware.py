"""The request size limit: per route, by the declared length and by the bytes as they arrive."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from tapledger.http.body_limit import (
    REQUEST_BODY_MAX_BYTES,
    TAP_BATCH_BODY_MAX_BYTES,
    BodyLimitMiddleware,
)
from tapledger.http.problems import PROBLEM_MEDIA_TYPE
from tests.asgi_script import ScriptedBody, call, stream
from ticketing.taps.application.ingestion import CODE_TEXT_MAX_CHARS, TAP_BATCH_MAX
from ticketing.taps.schemas import TRANSCRIPT_HEX_MAX_CHARS, TapBatchCreate, TapCreate

CHUNK_BYTES = 4096
STREAMED_BYTES = 4 * REQUEST_BODY_MAX_BYTES
BATCH_PATH = "/v1/taps/batch"


def build_app() -> tuple[FastAPI, list[int]]:
    app = FastAPI()
    app.add_middleware(BodyLimitMiddleware)
    read: list[int] = []

    @app.post("/v1/accounts")
    @app.post(BATCH_PATH)
    async def echo_length(request: Request) -> JSONResponse:
        body = await request.body()
        read.append(len(body))
        return JSONResponse({"bytes": len(body)})

    @app.post("/v1/forgiving")
    async def forgiving(request: Request) -> JSONResponse:
        # Answers any failure to read its body itself, as FastAPI's body parsing does (400).
        try:
            await request.body()
        except Exception:
            return JSONResponse({"detail": "bad body"}, status_code=400)
        return JSONResponse({})

    return app, read


def test_body_at_the_limit_is_read_whole() -> None:
    app, read = build_app()
    response = TestClient(app).post("/v1/accounts", content=b" " * REQUEST_BODY_MAX_BYTES)
    assert response.status_code == 200
    assert read == [REQUEST_BODY_MAX_BYTES]


def test_declared_length_over_the_limit_is_refused_before_any_byte_is_read() -> None:
    app, read = build_app()
    body = ScriptedBody(stream(CHUNK_BYTES, STREAMED_BYTES))
    headers = {"content-length": str(REQUEST_BODY_MAX_BYTES + 1)}
    answer = call(app, "POST", "/v1/accounts", body, headers)
    assert answer.status == 413
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert answer.json()["code"] == "body_too_large"
    assert body.receive_calls == 0
    assert read == []


def test_streamed_body_without_a_length_is_cut_off_once_past_the_limit() -> None:
    app, read = build_app()
    body = ScriptedBody(stream(CHUNK_BYTES, STREAMED_BYTES))
    answer = call(app, "POST", "/v1/accounts", body, {})
    assert answer.status == 413
    assert answer.json()["code"] == "body_too_large"
    # Not a chunk more than it took to pass the limit was asked for.
    assert body.pulled_bytes <= REQUEST_BODY_MAX_BYTES + CHUNK_BYTES
    assert read == []


def test_body_longer_than_its_declared_length_is_cut_off_too() -> None:
    app, _ = build_app()
    body = ScriptedBody(stream(CHUNK_BYTES, STREAMED_BYTES))
    answer = call(app, "POST", "/v1/accounts", body, {"content-length": "10"})
    assert answer.status == 413
    assert body.pulled_bytes <= REQUEST_BODY_MAX_BYTES + CHUNK_BYTES


def test_app_that_swallows_the_cut_off_still_answers_413() -> None:
    app, _ = build_app()
    answer = call(
        app, "POST", "/v1/forgiving", ScriptedBody(stream(CHUNK_BYTES, STREAMED_BYTES)), {}
    )
    assert answer.status == 413
    assert answer.json()["code"] == "body_too_large"


def test_tap_batch_route_has_its_own_larger_limit() -> None:
    app, read = build_app()
    client = TestClient(app)
    big = b" " * (REQUEST_BODY_MAX_BYTES * 4)
    assert client.post(BATCH_PATH, content=big).status_code == 200
    assert client.post("/v1/accounts", content=big).status_code == 413
    over = client.post(BATCH_PATH, content=b" " * (TAP_BATCH_BODY_MAX_BYTES + 1))
    assert over.status_code == 413
    assert read == [len(big)]


def _largest_card_tap(seq: int) -> dict[str, object]:
    return {
        "seq": seq,
        "tapped_at": 0xFFFF_FFFF,
        "device_decision": "accepted",
        "device_reason": "r" * 40,
        "medium": "card",
        "serial": "F" * 16,
        "proof": {
            "level": 3,
            "terminal_challenge": "F" * 16,
            "card_challenge": "F" * 16,
            "counter": 0xFFFFFF,
            "transcript": "F" * TRANSCRIPT_HEX_MAX_CHARS,
            "card_mac": "F" * 16,
        },
    }


@pytest.mark.parametrize("seq_base", [1, 4_000_000_000])
def test_largest_valid_tap_batch_fits_under_its_limit(seq_base: int) -> None:
    taps = [_largest_card_tap(seq_base + n) for n in range(TAP_BATCH_MAX)]
    batch = {"validator_id": 2**31 - 1, "epoch": 1000, "taps": taps}
    text = json.dumps(batch)
    TapBatchCreate.model_validate_json(text)  # the batch is valid, at every bound
    assert len(text.encode()) <= TAP_BATCH_BODY_MAX_BYTES


def test_largest_valid_online_check_fits_under_the_default_limit() -> None:
    card = {"validator_id": 2**31 - 1, "epoch": 1000, "tap": _largest_card_tap(4_000_000_000)}
    qr = {
        "validator_id": 2**31 - 1,
        "tap": {
            "seq": 1,
            "tapped_at": 0,
            "device_decision": "refused",
            "device_reason": "r" * 40,
            "medium": "qr",
            "code": "C" * CODE_TEXT_MAX_CHARS,
        },
    }
    for body in (card, qr):
        text = json.dumps(body)
        TapCreate.model_validate_json(text)
        assert len(text.encode()) <= REQUEST_BODY_MAX_BYTES
