"""The validator's HTTP adapter (over a mock transport) and its card station (an emulated card)."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from hardware.emulator.card import CardTorn
from hardware.fake_reader import CardInReader
from hardware.sam import SoftwareSam
from tests.doubles import SecondsClock
from tests.tap_media import BUS_FARE_VND, MASTER_KEYS, personalised_card
from tests.validator_fakes import NOW, config_body
from validators.backend import BackendRefused, BackendUnavailable
from validators.card_station import CardStation
from validators.gate import Gate
from validators.http_backend import HttpBackend
from validators.outbox import Outbox
from validators.trust import Trust


def backend(handler: httpx.MockTransport) -> HttpBackend:
    return HttpBackend("http://backend.test/", "tlk_device", transport=handler)


def test_the_adapter_sends_the_token_and_the_etag_and_reads_304_as_unchanged() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(200, json={"version": 1}, headers={"ETag": '"v1"'})

    http = backend(httpx.MockTransport(answer))
    fetched = http.issuer_keys(None)
    assert fetched is not None
    assert (fetched.body, fetched.etag) == ({"version": 1}, '"v1"')
    assert http.config(5, '"v1"') is None
    assert [r.url.path for r in seen] == ["/v1/issuer-keys", "/v1/validators/5/config"]
    assert {r.headers["authorization"] for r in seen} == {"Bearer tlk_device"}


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_and_throttling_are_unavailable_to_retry(status: int) -> None:
    http = backend(httpx.MockTransport(lambda _r: httpx.Response(status)))
    with pytest.raises(BackendUnavailable):
        http.upload(5, [])


def test_a_refusal_carries_the_problem_code_and_no_answer_is_unavailable() -> None:
    problem = {"code": "forbidden", "detail": "not this device"}
    http = backend(httpx.MockTransport(lambda _r: httpx.Response(403, json=problem)))
    with pytest.raises(BackendRefused) as refused:
        http.deny_list(0)
    assert (refused.value.status, refused.value.problem_code) == (403, "forbidden")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(BackendUnavailable):
        backend(httpx.MockTransport(down)).deny_list(0)


def station(
    tmp_path: Path, trust: Trust, *, card_present: bool = True
) -> tuple[CardStation, Outbox]:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    card = personalised_card(uuid4())
    reader = CardInReader(card, lost_card_errors=(CardTorn,), card_present=card_present)
    gate = Gate(outbox, trust, clock=SecondsClock())
    return CardStation(reader, SoftwareSam(MASTER_KEYS), gate, clock=SecondsClock()), outbox


def test_a_card_is_charged_the_configured_fare_and_recorded_with_its_session_proof(
    tmp_path: Path,
) -> None:
    config = config_body(9)
    card_station, outbox = station(tmp_path, Trust(config=config))
    decision = card_station.tap_once(0)
    assert decision is not None
    assert (decision.accepted, decision.reason, decision.seq) == (True, "charged", 1)
    assert decision.charged_vnd == config["media"][0]["max_fare_vnd"] == BUS_FARE_VND
    stored = outbox.get(1)
    assert stored is not None
    assert stored.upload_fields["proof"]["level"] == 3
    assert stored.tapped_at == NOW


def test_without_a_synced_config_a_card_is_refused_and_still_recorded(tmp_path: Path) -> None:
    card_station, outbox = station(tmp_path, Trust())
    decision = card_station.tap_once(0)
    assert decision is not None
    assert (decision.accepted, decision.reason, decision.seq) == (False, "no_fare_here", 1)
    assert outbox.pending_count() == 1


def test_no_card_within_the_wait_is_no_tap(tmp_path: Path) -> None:
    card_station, outbox = station(tmp_path, Trust(config=config_body(9)), card_present=False)
    assert card_station.tap_once(0) is None
    assert outbox.last_seq() == 0
