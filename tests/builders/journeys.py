"""Journeys on the Hanoi feed, in memory: a world of ledger, cards, taps and journeys on fakes."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from hardware.sam import SoftwareSam
from tests.doubles import Clock, DenyList
from tests.tap_media import MASTER_KEYS, Phone
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import TopUp
from ticketing.cards.adapters.key_vault import KeyVault
from ticketing.cards.application.card_issuer import CardIssuer
from ticketing.cards.application.smart_cards import SmartCards
from ticketing.cards.domain.smart_card import SmartCard
from ticketing.fares.engine import FareEngine
from ticketing.fares.feed import Feed
from ticketing.fares.loader import HANOI_FEED_DIR, load_feed
from ticketing.journeys.adapters.journey_views import JourneyFollower, JourneyViews
from ticketing.journeys.application.journeys import Journeys
from ticketing.journeys.application.pass_sales import PassSales
from ticketing.journeys.domain.journey import Journey
from ticketing.taps.application.ingestion import QrTap, TapIngestion
from ticketing.taps.application.tap_verification import TapVerifier

# 08:00 in Hanoi on a Monday.
START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


DAY = date(2026, 11, 23)


GATE_IN_01, GATE_OUT_01, GATE_IN_09, GATE_OUT_12, GATE_OUT_02 = 101, 102, 103, 104, 105


GATE_IN_99, GATE_OUT_99 = 106, 107


BUS_01 = 201


BUS_01_REAR = 202  # the rear door's validator on the same bus of route 01, at another stop


BUS_02 = 203


BALANCE_VND = 100_000


FEED = load_feed(HANOI_FEED_DIR)


@dataclasses.dataclass
class World:
    clock: Clock
    ledger: Ledger
    cards: CardIssuer
    taps: TapIngestion
    journeys: Journeys
    views: JourneyViews
    view_follower: JourneyFollower
    passes: PassSales
    seq: int = 0
    counter: int = 0

    def rider(self, *, category: int = 0) -> tuple[UUID, Phone]:
        account = self.ledger.open_account(rider_category=category)
        self.ledger.execute(TopUp(account.id, BALANCE_VND, f"seed-{account.id.hex}"))
        phone = Phone.new()
        card = self.cards.issue_virtual_card(
            account.id, device_key=phone.public_key(), concession_proof_checked=True
        )
        phone.certify(card.certificate_b64)
        return account.id, phone

    def tap(self, phone: Phone, validator_id: int, after_min: float) -> None:
        """A tap `after_min` minutes after START (the validator's upload is verified then)."""
        at = START + timedelta(minutes=after_min)
        self.clock.now = at
        self.seq += 1
        self.counter += 1
        code = phone.code(int(at.timestamp()) - 2, self.counter)
        [result] = self.taps.ingest_batch(
            validator_id, [QrTap(self.seq, at, "accepted", "accepted", code)]
        )
        assert result.status == "accepted", result

    def follow(self) -> None:
        self.journeys.catch_up()
        self.view_follower.catch_up()

    def follow_again(self) -> int:
        """A second journey follower with no position (as after losing its store) re-applies
        every tap; returns how many it applied."""
        again = Journeys(
            taps=self.taps,
            ledger=self.ledger,
            cards=self.cards,
            smart_cards=self.journeys.smart_cards,
            fares=self.journeys.fares,
            open_journeys=self.views.open_journeys,
        )
        return again.catch_up()

    def balance(self, account_id: UUID) -> tuple[int, int]:
        account = self.ledger.get_account(account_id)
        return account.posted_vnd, account.pending_vnd

    def journeys_of(self, account_id: UUID) -> list[Journey]:
        rows = self.views.for_account(account_id)
        found = [self.journeys.get_journey(r.journey_id) for r in reversed(rows)]
        return [j for j in found if j is not None]


def build(feed: Feed = FEED) -> World:
    clock = Clock(START)
    ledger = Ledger(clock=clock)
    cards = CardIssuer(sealer=KeyVault(os.urandom(32)), account_of=ledger.get_account, clock=clock)
    cards.ensure_issuer_key()
    verifier = TapVerifier(
        keys=cards.published_keys,
        deny_list=DenyList(),
        card_issued=lambda serial: SmartCard.create_id(serial) in cards.repository,
        sam=SoftwareSam(MASTER_KEYS),
        clock=clock,
        refresh_s=0,
    )
    taps = TapIngestion(verifier=verifier, clock=clock)
    register_validators(taps)
    engine = create_engine("sqlite://", poolclass=StaticPool)
    views = JourneyViews(engine)
    journeys = Journeys(
        taps=taps,
        ledger=ledger,
        cards=cards,
        smart_cards=SmartCards(cards, ledger),
        fares=FareEngine(feed),
        open_journeys=views.open_journeys,
    )
    view_follower = JourneyFollower(journeys, engine)
    view_follower.create_tables()
    passes = PassSales(journeys, ledger)
    return World(clock, ledger, cards, taps, journeys, views, view_follower, passes)


def register_validators(taps: TapIngestion) -> None:
    """The world's metro gates on line 2A and its buses on routes 01 and 02."""
    gates = [
        (GATE_IN_01, "2A-01", "entry"),
        (GATE_OUT_01, "2A-01", "exit"),
        (GATE_IN_09, "2A-09", "entry"),
        (GATE_OUT_12, "2A-12", "exit"),
        (GATE_OUT_02, "2A-02", "exit"),
        (GATE_IN_99, "2A-99", "entry"),
        (GATE_OUT_99, "2A-99", "exit"),
    ]
    for validator_id, stop_id, direction in gates:
        taps.register_validator(
            validator_id=validator_id,
            kind="metro_gate",
            network_id=2,
            location=validator_id,
            stop_id=stop_id,
            route_id="2A",
            direction=direction,
        )
    for validator_id, stop_id, route_id in (
        (BUS_01, "bus-kim-ma", "01"),
        (BUS_01_REAR, "bus-my-dinh", "01"),
        (BUS_02, "bus-kim-ma", "02"),
    ):
        taps.register_validator(
            validator_id=validator_id,
            kind="bus",
            network_id=1,
            location=validator_id,
            stop_id=stop_id,
            route_id=route_id,
        )


def penniless_rider(world: World) -> tuple[UUID, Phone]:
    account = world.ledger.open_account(rider_category=0)
    phone = Phone.new()
    card = world.cards.issue_virtual_card(account.id, device_key=phone.public_key())
    phone.certify(card.certificate_b64)
    return account.id, phone


def count_calls(owner: object, name: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the calls of one method of `owner`; the list holds the count."""
    method = getattr(owner, name)
    calls = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return method(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls
