"""The device's side of enrolment: the token kept where `validator run` reads it, the outbox in
the new epoch, and a state directory of another validator left alone."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from validators.backend import BackendRefused
from validators.device import OUTBOX_FILE
from validators.enrolment import (
    DEVICE_TOKEN_FILE,
    StateOfAnotherValidator,
    enrol_device,
    enrolled_validator_id,
)
from validators.http_backend import HttpBackend
from validators.outbox import Outbox

SERVER = "http://backend.test"


def backend_answering(status: int, body: Mapping[str, object]) -> HttpBackend:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/enrolments"
        assert "authorization" not in request.headers  # the device has no token yet
        assert json.loads(request.content) == {"code": "ABCD-EFGH-JKMN-PQRS"}
        return httpx.Response(status, json=body)

    return HttpBackend(SERVER, None, transport=httpx.MockTransport(answer))


def enrolled(validator_id: int, epoch: int) -> HttpBackend:
    body = {"validator_id": validator_id, "epoch": epoch, "token": f"tlk_{validator_id}"}
    return backend_answering(201, body)


def test_the_token_is_kept_for_the_user_only_and_the_outbox_takes_the_new_epoch(
    tmp_path: Path,
) -> None:
    result = enrol_device(SERVER, "ABCD-EFGH-JKMN-PQRS", tmp_path, backend=enrolled(17, 3))
    assert (result.validator_id, result.epoch) == (17, 3)
    token_file = tmp_path / DEVICE_TOKEN_FILE
    assert token_file.read_text() == "tlk_17\n"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert enrolled_validator_id(tmp_path) == 17
    outbox = Outbox(tmp_path / OUTBOX_FILE)
    assert outbox.epoch() == 3
    outbox.close()


def test_a_refused_code_stores_nothing_and_says_why(tmp_path: Path) -> None:
    problem = {"code": "enrolment_code_used", "detail": "used already"}
    with pytest.raises(BackendRefused, match="enrolment_code_used"):
        enrol_device(
            SERVER, "ABCD-EFGH-JKMN-PQRS", tmp_path, backend=backend_answering(409, problem)
        )
    assert not (tmp_path / DEVICE_TOKEN_FILE).exists()
    assert enrolled_validator_id(tmp_path) is None


def test_a_state_directory_of_another_validator_is_left_as_it_was(tmp_path: Path) -> None:
    enrol_device(SERVER, "ABCD-EFGH-JKMN-PQRS", tmp_path, backend=enrolled(17, 1))
    with pytest.raises(StateOfAnotherValidator):
        enrol_device(SERVER, "ABCD-EFGH-JKMN-PQRS", tmp_path, backend=enrolled(18, 1))
    assert (tmp_path / DEVICE_TOKEN_FILE).read_text() == "tlk_17\n"
    assert enrolled_validator_id(tmp_path) == 17
    renewed = backend_answering(201, {"validator_id": 17, "epoch": 2, "token": "tlk_renewed"})
    again = enrol_device(SERVER, "ABCD-EFGH-JKMN-PQRS", tmp_path, backend=renewed)
    assert again.epoch == 2  # the same validator enrolled again: a new token, a new epoch
    assert (tmp_path / DEVICE_TOKEN_FILE).read_text() == "tlk_renewed\n"
