"""The backend the metro gates of the PC/SC tier upload to, and a card issued as the product does.

The app is served in a thread of the test process on the embedded default (SQLite, followers in
process), with the card vectors' master keys in its SAM, so it can check each card session's
MAC; the test keeps the container to read a tap's recorded event. A card is issued to a funded
account (`POST /v1/cards`), personalised by the ticket office's desk with the network the backend
answered, and reloaded from the account (held, written to the card, settled from the purse the
card shows), all on the card image the emulator then presents.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from hardware.emulator.card import CardTorn, EmulatedCard
from hardware.emulator.image import ImageFile
from hardware.fake_reader import CardInReader
from hardware.sam import SoftwareSam
from hardware.tlc1.records import Environment
from hardware.tlc1.terminal import Terminal
from tapledger.bootstrap import Container, bootstrap
from tapledger.http.app import create_app
from tests.builders.card_emulator import MASTER_KEYS, SERIAL
from tests.builders.settings import ExplicitSettings
from tests.e2e.in_process_server import served_app
from tests.e2e.riders import ADMIN
from tests.tap_media import Phone
from ticketing.taps.domain.tap import Tap, tap_id
from validators.card_desk import CardDesk

# The backend's followers catch up within this (a busy machine, two gates uploading).
SETTLED_WAIT_S = 60.0
POLL_S = 0.2
REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class CardFiles:
    """The emulated card: its serial, its image (its memory), and its master-key file."""

    serial: bytes
    image: Path
    keys: Path


@dataclass(frozen=True)
class Backend:
    url: str
    container: Container
    client: httpx.Client

    def device_reason(self, validator_id: int, seq: int) -> tuple[str, str, str | None]:
        """A recorded tap as its event keeps it: what the gate decided and why, and the
        backend's own verification (accepted or refused, with its reason)."""
        [recorded] = self.container.taps.events.get(tap_id(validator_id, seq))
        assert isinstance(recorded, Tap.Recorded), recorded
        return recorded.device_reason, recorded.verification, recorded.refusal_reason


def write_key_file(path: Path) -> Path:
    """The vectors' master keys as a plain SAM key file (spec/CARD.md, "Key files")."""
    path.write_text(json.dumps({str(int(level)): key.hex() for level, key in MASTER_KEYS.items()}))
    return path


@contextmanager
def metro_backend(workdir: Path, sam_key_file: Path) -> Iterator[Backend]:
    settings = ExplicitSettings(
        data_dir=workdir / "var",
        follow_in_process=True,
        environment="local",
        database_url=None,
        redis_url=None,
        admin_token=None,
        sam_key_file=sam_key_file,
    )
    container = bootstrap(settings)
    with (
        served_app(create_app(container), name="metro-backend") as url,
        httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client,
    ):
        yield Backend(url, container, client)


def register_gate(
    backend: Backend, workdir: Path, validator_id: int, stop_id: str, direction: str
) -> Path:
    """A metro gate of line 2A on the card network (the default); returns its token file."""
    body = {
        "validator_id": validator_id,
        "kind": "metro_gate",
        "location": validator_id,
        "stop_id": stop_id,
        "route_id": "2A",
        "direction": direction,
    }
    registered = backend.client.post("/v1/validators", json=body, headers=ADMIN)
    assert registered.status_code == httpx.codes.CREATED, registered.text
    token_file = workdir / f"{validator_id}.token"
    token_file.write_text(registered.json()["token"] + "\n")
    return token_file


def funded_account(backend: Backend, top_up_vnd: int) -> str:
    opened = backend.client.post("/v1/accounts", json={"rider_category": 0}, headers=ADMIN)
    assert opened.status_code == httpx.codes.CREATED, opened.text
    account_id: str = opened.json()["id"]
    top_up = {"amount_vnd": top_up_vnd, "payment_reference": f"gates-{account_id}"}
    topped = backend.client.post(f"/v1/accounts/{account_id}/top-ups", json=top_up, headers=ADMIN)
    assert topped.status_code == httpx.codes.CREATED, topped.text
    return account_id


def _desk(card: EmulatedCard) -> CardDesk:
    reader = CardInReader(card, "ticket office", lost_card_errors=(CardTorn,))
    reader.power_on()
    return CardDesk(Terminal(reader, SoftwareSam(MASTER_KEYS)))


def issued_card(backend: Backend, account_id: str, workdir: Path, purse_vnd: int) -> CardFiles:
    """The vectors' card issued to `account_id`, personalised and reloaded with `purse_vnd`
    from the account, its memory in an image file for `tapledger card emulate`."""
    serial = SERIAL.hex()
    issued = backend.client.post(
        "/v1/cards", json={"serial": serial, "account_id": account_id}, headers=ADMIN
    )
    assert issued.status_code == httpx.codes.CREATED, issued.text
    image = ImageFile(workdir / "card.json")
    card = EmulatedCard.from_master_keys(
        MASTER_KEYS, SERIAL, image=image.load_or_create(SERIAL), store=image
    )
    _desk(card).personalise(
        Environment(
            network_id=issued.json()["network_id"],
            issued_on=int(time.time()),
            rider_category=issued.json()["rider_category"],
            account_id=UUID(account_id),
        )
    )
    reload = {"reload_id": "desk-1", "amount_vnd": purse_vnd, "purse_before_vnd": 0}
    started = backend.client.post(f"/v1/cards/{serial}/reloads", json=reload, headers=ADMIN)
    assert started.status_code == httpx.codes.ACCEPTED, started.text
    reloaded = _desk(card).reload(purse_vnd)
    assert reloaded.ratified
    settle = {
        "purse_after_vnd": reloaded.purse_after_vnd,
        "transaction_counter": reloaded.proof.counter,
    }
    settled = backend.client.post(
        f"/v1/cards/{serial}/reloads/desk-1/settle", json=settle, headers=ADMIN
    )
    assert settled.json() == {"outcome": "loaded"}, settled.text
    keys = write_key_file(workdir / "card-keys.json")
    return CardFiles(SERIAL, image.path, keys)


def purse_on(card: CardFiles) -> tuple[int, bool]:
    """The purse the card's memory holds, and whether its last session was ratified."""
    image = ImageFile(card.image).load_or_create(card.serial)
    return image.purse_vnd, image.ratified


def settled(backend: Backend, done: Callable[[], Any], what: str) -> Any:
    """Polls the backend until `done()` gives a truthy answer (its followers ran); returns it."""
    deadline = time.monotonic() + SETTLED_WAIT_S
    while not (answer := done()):
        assert time.monotonic() < deadline, f"not within {SETTLED_WAIT_S:g} s: {what}"
        time.sleep(POLL_S)
    return answer


def account(backend: Backend, account_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = backend.client.get(f"/v1/accounts/{account_id}", headers=ADMIN).json()
    return answer


def journeys(backend: Backend, account_id: str) -> list[dict[str, Any]]:
    answer: list[dict[str, Any]] = backend.client.get(
        "/v1/journeys", params={"account_id": account_id}, headers=ADMIN
    ).json()
    return answer


def funded_phone(backend: Backend, top_up_vnd: int) -> tuple[str, Phone]:
    """A funded account and a phone holding its virtual card (certified by the issuer)."""
    account_id = funded_account(backend, top_up_vnd)
    phone = Phone.new()
    key = base64.b64encode(phone.public_key()).decode()
    card = backend.client.post(
        f"/v1/accounts/{account_id}/virtual-cards", json={"device_key": key}, headers=ADMIN
    )
    assert card.status_code == httpx.codes.CREATED, card.text
    phone.certify(card.json()["certificate"])
    return account_id, phone
