"""Tap ingestion in memory: a ledger, a card issuer, a verifier on the deny list double, two
buses."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from hardware.sam import SoftwareSam
from hardware.tlc1.terminal import SessionProof
from tests.doubles import Clock, DenyList
from tests.tap_media import CARD_SERIAL, MASTER_KEYS, Phone
from ticketing.accounts.application.ledger import Ledger
from ticketing.cards.adapters.key_vault import KeyVault
from ticketing.cards.application.card_issuer import CardIssuer
from ticketing.cards.application.smart_cards import SmartCards
from ticketing.cards.domain.smart_card import SmartCard
from ticketing.shared.observed import LOG_SECTION_MAX
from ticketing.taps.application.ingestion import (
    CardTap,
    QrTap,
    TapIngestion,
)
from ticketing.taps.application.tap_verification import TapVerifier
from ticketing.taps.domain.tap import (
    Tap,
)

START = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


BUS_17, BUS_18 = 17, 18


@dataclasses.dataclass
class World:
    clock: Clock
    ledger: Ledger
    cards: CardIssuer
    deny: DenyList
    taps: TapIngestion
    phone: Phone
    card_id: UUID
    account_id: UUID


def build(*, sam: SoftwareSam | None) -> World:
    clock = Clock(START)
    ledger = Ledger(clock=clock)
    cards = CardIssuer(sealer=KeyVault(os.urandom(32)), account_of=ledger.get_account, clock=clock)
    cards.ensure_issuer_key()
    account = ledger.open_account(rider_category=0)
    phone = Phone.new()
    card = cards.issue_virtual_card(account.id, device_key=phone.public_key())
    phone.certify(card.certificate_b64)
    deny = DenyList()
    verifier = TapVerifier(
        keys=cards.published_keys,
        deny_list=deny,
        card_issued=lambda serial: SmartCard.create_id(serial) in cards.repository,
        sam=sam,
        clock=clock,
        refresh_s=0,  # every check sees the latest deny list
    )
    taps = TapIngestion(verifier=verifier, clock=clock)
    for validator_id in (BUS_17, BUS_18):
        taps.register_validator(validator_id=validator_id, kind="bus", network_id=1, location=32)
    return World(clock, ledger, cards, deny, taps, phone, card.id, account.id)


@pytest.fixture
def world() -> World:
    return build(sam=SoftwareSam(MASTER_KEYS))


def unix(at: datetime) -> int:
    return int(at.timestamp())


def qr_tap(world: World, seq: int, *, counter: int | None = None, after_s: int = 0) -> QrTap:
    at = START + timedelta(seconds=after_s)
    code = world.phone.code(unix(at) - 2, seq if counter is None else counter)
    return QrTap(seq, at, "accepted", "accepted", code)


def card_tap(seq: int, proof: SessionProof, *, at: datetime = START) -> CardTap:
    return CardTap(seq, at, "accepted", "charged", proof.serial.hex(), proof)


def recorded_taps(taps: TapIngestion) -> list[Any]:
    notifications = taps.notification_log.select(start=1, limit=LOG_SECTION_MAX)
    events = [taps.mapper.to_domain_event(n) for n in notifications]
    return [e for e in events if isinstance(e, Tap.Recorded)]


def statuses(results: list[Any]) -> list[str]:
    return [r.status.value for r in results]


def issue_smart_card(world: World) -> None:
    SmartCards(world.cards, world.ledger).issue(world.account_id, serial=CARD_SERIAL.hex())
