"""The journey follower on each store it runs on, the embedded SQLite file and PostgreSQL: taps
in, journeys and postings out; a crash between the ledger's posting and the follower's tracking
save, then the same tap again, charges once; a follower reprocessing every tap from scratch
charges nothing more; card taps' purses are recorded once per section, and a top-up saved on a
card meanwhile loses nothing."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from hardware.emulator.card import EmulatedCard
from hardware.sam import SoftwareSam
from hardware.tlc1.terminal import SessionProof
from tapledger.bootstrap import Container, bootstrap
from tapledger.settings import Settings
from tests.builders.journeys import count_calls
from tests.doubles import Clock
from tests.integration.conftest import settings_for
from tests.tap_media import (
    BUS_FARE_VND,
    CARD_SERIAL,
    MASTER_KEYS,
    Phone,
    bus_ride,
    personalised_card,
)
from ticketing.accounts.domain.commands import Debit, PlaceHold, TopUp
from ticketing.cards.domain.smart_card import SmartCard
from ticketing.journeys.application.journeys import Journeys, PricingLockLost
from ticketing.journeys.application.pricing_lock import InProcessPricingLock
from ticketing.journeys.application.reconciliation import Mismatch, reconcile
from ticketing.taps.application.ingestion import CardTap, QrTap

SQLITE = "sqlite"
POSTGRES = "postgres"
GATE_IN, GATE_OUT, BUS = 401, 402, 403
SEED_VND = 100_000
METRO_01_TO_12_VND = 15_000
BUS_01_VND = 10_000
# 08:00 in Hanoi.
START = datetime.fromisoformat("2026-03-02T01:00:00+00:00")
JOIN_TIMEOUT_S = 120.0
BUS_RIDES = 3
BUS_RIDE_MIN = 20
# More than the transfer window: each bus ride is a journey of its own.
BUS_RIDE_GAP_MIN = 90


@pytest.fixture(
    params=[
        pytest.param(SQLITE, id="sqlite-file"),
        pytest.param(POSTGRES, id="postgres", marks=pytest.mark.postgres),
    ]
)
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == POSTGRES:
        return settings_for(tmp_path, request.getfixturevalue("postgres_database_url"))
    return settings_for(tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def container(store_settings: Settings, clock: Clock) -> Iterator[Container]:
    built = bootstrap(store_settings, clock=clock, sam=SoftwareSam(MASTER_KEYS))
    for validator_id, kind, stop_id, route_id, direction in (
        (GATE_IN, "metro_gate", "2A-01", "2A", "entry"),
        (GATE_OUT, "metro_gate", "2A-12", "2A", "exit"),
        (BUS, "bus", "bus-kim-ma", "01", ""),
    ):
        built.taps.register_validator(
            validator_id=validator_id,
            kind=kind,
            network_id=1,
            location=validator_id,
            stop_id=stop_id,
            route_id=route_id,
            direction=direction,
        )
    yield built
    built.close()


class Rider:
    def __init__(self, container: Container, clock: Clock) -> None:
        self.container = container
        self.clock = clock
        account = container.ledger.open_account(rider_category=0)
        self.account_id = account.id
        container.ledger.execute(TopUp(account.id, SEED_VND, f"seed-{account.id.hex}"))
        self.phone = Phone.new()
        card = container.cards.issue_virtual_card(
            account.id, device_key=self.phone.public_key(), concession_proof_checked=True
        )
        self.phone.certify(card.certificate_b64)
        self.seq = 0

    def tap(self, validator_id: int, after_min: int) -> None:
        at = START + timedelta(minutes=after_min)
        self.clock.now = at
        self.seq += 1
        code = self.phone.code(int(at.timestamp()) - 2, self.seq)
        upload = QrTap(self.seq, at, "accepted", "accepted", code)
        [result] = self.container.taps.ingest_batch(validator_id, [upload])
        assert result.status == "accepted", result

    def ride(self) -> None:
        """A 2A ride from Cát Linh to Yên Nghĩa, then a bus ride on route 01."""
        self.tap(GATE_IN, 0)
        self.tap(GATE_OUT, 30)
        self.tap(BUS, 120)
        self.tap(BUS, 140)

    def bus_rides(self, count: int, *, after_min: int) -> None:
        """`count` bus rides on route 01, each a boarding and an alighting, far enough apart
        that each is a journey of its own."""
        for ride in range(count):
            self.tap(BUS, after_min + ride * BUS_RIDE_GAP_MIN)
            self.tap(BUS, after_min + ride * BUS_RIDE_GAP_MIN + BUS_RIDE_MIN)

    def balance(self) -> tuple[int, int]:
        account = self.container.ledger.get_account(self.account_id)
        return account.posted_vnd, account.pending_vnd


@pytest.fixture
def rider(container: Container, clock: Clock) -> Rider:
    return Rider(container, clock)


def test_taps_become_journeys_and_postings(container: Container, rider: Rider) -> None:
    rider.tap(GATE_IN, 0)
    container.catch_up()
    assert rider.balance() == (SEED_VND, METRO_01_TO_12_VND)
    rider.tap(GATE_OUT, 30)
    rider.tap(BUS, 120)
    rider.tap(BUS, 140)
    container.catch_up()
    assert rider.balance() == (SEED_VND - METRO_01_TO_12_VND - BUS_01_VND, 0)
    rows = container.journey_views.for_account(rider.account_id)
    assert [(r.status, r.fare_vnd, r.charged_vnd) for r in rows] == [
        ("ended", BUS_01_VND, BUS_01_VND),
        ("ended", METRO_01_TO_12_VND, METRO_01_TO_12_VND),
    ]


class Crash(Exception):
    """The process dies after the ledger posted and before the tracking record is saved."""


def test_a_crash_before_the_tracking_save_then_the_same_taps_again_charge_once(
    container: Container, rider: Rider, monkeypatch: pytest.MonkeyPatch
) -> None:
    journeys = container.journeys
    record = journeys._record
    calls = {"count": 0}

    def record_or_crash(processing: Any) -> Any:
        # The four taps (entry, exit, bus boarding, bus alighting) are one section, saved
        # once after the ledger committed its money: the first two saves crash.
        calls["count"] += 1
        if calls["count"] <= 2:
            raise Crash
        return record(processing)

    monkeypatch.setattr(journeys, "_record", record_or_crash)
    rider.ride()
    with pytest.raises(Crash):
        journeys.catch_up()
    # The section's money moved; the follower's record of its journeys did not.
    charged = (SEED_VND - METRO_01_TO_12_VND - BUS_01_VND, 0)
    assert rider.balance() == charged
    assert journeys.position() == 0
    with pytest.raises(Crash):
        journeys.catch_up()
    assert rider.balance() == charged
    assert journeys.catch_up() == rider.seq
    container.catch_up()
    assert rider.balance() == charged
    assert [r.charged_vnd for r in container.journey_views.for_account(rider.account_id)] == [
        BUS_01_VND,
        METRO_01_TO_12_VND,
    ]


def test_reprocessing_every_tap_from_scratch_charges_nothing_more(
    container: Container, rider: Rider, store_settings: Settings, tmp_path: Path
) -> None:
    rider.ride()
    container.catch_up()
    charged = rider.balance()
    replay = fresh_journeys(container, store_settings, tmp_path)
    try:
        assert replay.catch_up() == rider.seq
        assert replay.catch_up() == 0
        for row in container.journey_views.for_account(rider.account_id):
            again = replay.get_journey(row.journey_id)
            assert again is not None
            assert (again.status.value, again.fare_vnd, again.charged_vnd) == (
                row.status,
                row.fare_vnd,
                row.charged_vnd,
            )
    finally:
        replay.close()
    assert rider.balance() == charged


RACERS = 2
RACE_RIDERS = 4
RACE_ATTEMPTS_MAX = 20
RACE_SEQS_PER_RIDER = 100


def test_two_followers_racing_on_one_store_charge_every_fare_once(
    container: Container, store_settings: Settings, clock: Clock
) -> None:
    riders = [Rider(container, clock) for _ in range(RACE_RIDERS)]
    for index, rider in enumerate(riders):
        rider.seq = index * RACE_SEQS_PER_RIDER  # each rider's uploads get seqs of their own
        rider.ride()
    other = bootstrap(store_settings, clock=clock, create_schema=False)
    followers = [container.journeys, other.journeys]
    start = threading.Barrier(RACERS)
    failures: list[BaseException] = []

    def follow(journeys: Journeys) -> None:
        try:
            start.wait(JOIN_TIMEOUT_S)
            for _ in range(RACE_ATTEMPTS_MAX):
                try:
                    if journeys.catch_up() == 0:
                        return
                except IntegrityError:
                    continue  # the other follower saved first; resume from its position
        except BaseException as error:  # reported to the test thread below
            failures.append(error)

    threads = [threading.Thread(target=follow, args=(j,)) for j in followers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(JOIN_TIMEOUT_S)
    finally:
        other.close()
    assert not failures, f"a follower failed: {failures[0]!r}"
    assert container.journeys.catch_up() == 0
    container.catch_up()
    for rider in riders:
        assert rider.balance() == (SEED_VND - METRO_01_TO_12_VND - BUS_01_VND, 0)
        rows = container.journey_views.for_account(rider.account_id)
        assert [(r.fare_vnd, r.charged_vnd) for r in rows] == [
            (BUS_01_VND, BUS_01_VND),
            (METRO_01_TO_12_VND, METRO_01_TO_12_VND),
        ]


@pytest.mark.parametrize("shared_lock", [True, False], ids=["pricing-lock", "no-shared-lock"])
def test_a_follower_whose_position_another_overtook_charges_nothing_twice(
    container: Container,
    store_settings: Settings,
    clock: Clock,
    shared_lock: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two workers' followers on one store: the second reads the log just as the first saves
    # the same taps. Whatever it read before, it must not apply those taps on top of the
    # first one's journeys, which would move money under journeys nobody keeps. The pricing
    # lock keeps it from reading the log then; without the lock (a lock of its own), the taps
    # its journeys already hold are applied again as nothing.
    riders = [Rider(container, clock) for _ in range(RACE_RIDERS)]
    for index, rider in enumerate(riders):
        rider.seq = index * RACE_SEQS_PER_RIDER
        rider.bus_rides(BUS_RIDES, after_min=0)
    other = bootstrap(store_settings, clock=clock, create_schema=False)
    if not shared_lock:
        other.journeys.pricing_lock = InProcessPricingLock()
    try:
        log = other.taps.notification_log
        select = log.select
        overtaken = {"done": False}

        def select_after_the_other_saved(*args: Any, **kwargs: Any) -> Any:
            if not overtaken["done"]:
                overtaken["done"] = True
                container.journeys.catch_up()
            return select(*args, **kwargs)

        monkeypatch.setattr(log, "select", select_after_the_other_saved)
        with contextlib.suppress(IntegrityError):
            # As the follower's run loop does: it logs the failure and resumes.
            other.journeys.catch_up()
        assert overtaken["done"]
    finally:
        other.close()
    container.journeys.catch_up()
    container.catch_up()
    rides_vnd = BUS_RIDES * BUS_01_VND
    for rider in riders:
        assert rider.balance() == (SEED_VND - rides_vnd, 0)
        rows = container.journey_views.for_account(rider.account_id)
        assert sum(r.charged_vnd for r in rows) == rides_vnd


def test_a_follower_that_lost_the_pricing_lock_moves_no_money(
    container: Container, rider: Rider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A dropped database session frees the lock; another follower may be pricing these taps.
    journeys = container.journeys
    rider.ride()
    monkeypatch.setattr(journeys.pricing_lock, "still_held", lambda: False)
    with pytest.raises(PricingLockLost):
        journeys.catch_up()
    assert rider.balance() == (SEED_VND, 0)
    assert journeys.position() == 0
    monkeypatch.undo()
    assert journeys.catch_up() == rider.seq
    assert rider.balance() == (SEED_VND - METRO_01_TO_12_VND - BUS_01_VND, 0)


class ReplayJourneys(Journeys):
    """The fare follower under another name: its own store, no position, no journeys yet."""

    name = "JourneysReplay"


def fresh_journeys(container: Container, settings: Settings, tmp_path: Path) -> Journeys:
    env = settings.event_store_env()
    if settings.postgres_url is None:
        # The SQLite store keeps every application in one table; this one gets a file of its own.
        env["SQLITE_DBNAME"] = str(tmp_path / "replay.sqlite")
    return ReplayJourneys(
        env,
        taps=container.taps,
        ledger=container.ledger,
        cards=container.cards,
        smart_cards=container.smart_cards,
        fares=container.journeys.fares,
        open_journeys=container.journey_views.open_journeys,
    )


CARD_RIDERS = 3
CARD_RIDES = 3
CARD_PURSE_VND = 50_000
CARD_RIDE_GAP_MIN = 10
RELOAD_VND = 20_000


class CardRider:
    """A rider whose TLC1 card pays bus rides from its purse."""

    def __init__(self, container: Container, clock: Clock, index: int) -> None:
        self.container = container
        self.clock = clock
        account = container.ledger.open_account(rider_category=0)
        serial = (int.from_bytes(CARD_SERIAL, "big") + index).to_bytes(len(CARD_SERIAL), "big")
        self.serial = serial.hex()
        container.smart_cards.issue(account.id, serial=self.serial)
        self.card: EmulatedCard = personalised_card(
            account.id, purse_vnd=CARD_PURSE_VND, serial=serial
        )
        self.seq = index * RACE_SEQS_PER_RIDER

    def ride(self, after_min: int) -> SessionProof:
        at = START + timedelta(minutes=after_min)
        self.clock.now = at
        self.seq += 1
        proof = bus_ride(self.card, at=int(at.timestamp()), validator=BUS)
        upload = CardTap(self.seq, at, "accepted", "charged", self.serial, proof)
        [result] = self.container.taps.ingest_batch(BUS, [upload])
        assert result.status == "accepted", result
        return proof

    def recorded(self) -> tuple[int, int | None]:
        card = self.container.smart_cards.get(self.serial)
        return card.purse_vnd, card.transaction_counter

    def purses_recorded(self) -> int:
        stored = self.container.cards.recorder.select_events(SmartCard.create_id(self.serial))
        return sum(1 for e in stored if e.topic == SmartCard.PurseSeen.TOPIC)


def test_a_section_of_card_taps_records_each_card_s_newest_purse_once(
    container: Container, clock: Clock
) -> None:
    riders = [CardRider(container, clock, index) for index in range(CARD_RIDERS)]
    newest = {}
    for ride in range(CARD_RIDES):
        for rider in riders:
            newest[rider.serial] = rider.ride(ride * CARD_RIDE_GAP_MIN).counter
    assert container.journeys.catch_up() == CARD_RIDERS * CARD_RIDES
    for rider in riders:
        purse_vnd = CARD_PURSE_VND - CARD_RIDES * BUS_FARE_VND
        assert rider.recorded() == (purse_vnd, newest[rider.serial])
        assert rider.purses_recorded() == 1


def test_a_top_up_saved_on_a_card_while_its_purse_is_recorded_loses_neither(
    container: Container, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rider = CardRider(container, clock, 0)
    account_id = container.smart_cards.get(rider.serial).account_id
    container.ledger.execute(TopUp(account_id, SEED_VND, f"seed-{account_id.hex}"))
    rider.ride(0)
    container.journeys.catch_up()  # the follower now remembers the card
    proof = rider.ride(CARD_RIDE_GAP_MIN)
    purse_vnd = CARD_PURSE_VND - 2 * BUS_FARE_VND
    recorder = container.journeys.purses
    see_all = recorder._see_all

    def see_then_top_up(observations: Any) -> list[SmartCard]:
        changed = see_all(observations)
        # A desk starts a reload on the same card before the follower saves it.
        container.smart_cards.start_reload(
            rider.serial, reload_id="desk-1", amount_vnd=RELOAD_VND, purse_before_vnd=purse_vnd
        )
        return changed

    monkeypatch.setattr(recorder, "_see_all", see_then_top_up)
    alone = count_calls(recorder, "_record_each", monkeypatch)
    assert container.journeys.catch_up() == 1
    assert rider.recorded() == (purse_vnd, proof.counter)
    assert alone == [1]  # the one save failed; the card was recorded on its own
    assert "desk-1" in container.smart_cards.get(rider.serial).open_reloads
    assert rider.purses_recorded() == 2


def test_the_ledger_and_the_journeys_agree_after_riding(container: Container, rider: Rider) -> None:
    rider.ride()
    assert container.reconcile_journeys() == []
    assert container.reconcile_journeys(rider.account_id) == []


def test_money_moved_under_a_journey_that_does_not_record_it_is_reported(
    container: Container, rider: Rider
) -> None:
    rider.ride()
    container.catch_up()
    [bus, metro] = container.journey_views.for_account(rider.account_id)
    stray = f"journey:{bus.journey_id.hex}:leg:9"
    orphan_hold = f"journey:{uuid4().hex}:hold:0"
    container.ledger.execute(Debit(rider.account_id, stray, 1_000, "ride"))
    container.ledger.execute(PlaceHold(rider.account_id, orphan_hold, 15_000, 3600, "metro entry"))
    found = {(d.mismatch, d.transfer_id) for d in container.reconcile_journeys()}
    assert found == {
        (Mismatch.NOT_RECORDED, stray),
        (Mismatch.NOT_RECORDED, orphan_hold),
        (Mismatch.HOLD_NOT_OWNED, orphan_hold),
    }
    assert metro.journey_id.hex not in {t for _, t in found}


def test_a_crash_between_the_ledger_and_the_save_shows_then_mends_by_applying_again(
    container: Container, rider: Rider, monkeypatch: pytest.MonkeyPatch
) -> None:
    journeys = container.journeys
    record = journeys._record

    def crash(processing: Any) -> Any:
        raise Crash

    monkeypatch.setattr(journeys, "_record", crash)
    rider.ride()
    with pytest.raises(Crash):
        journeys.catch_up()
    container.follower.catch_up()
    # Money moved for journeys that are not saved yet: each transfer is not recorded.
    found = reconcile(
        container.read_model.journey_lines(),
        container.read_model.pending_journey_holds(),
        journeys.get_journey,
    )
    assert {d.mismatch for d in found} == {Mismatch.NOT_RECORDED}
    assert sum(d.posted_delta_vnd for d in found) == -(METRO_01_TO_12_VND + BUS_01_VND)
    monkeypatch.setattr(journeys, "_record", record)
    assert container.reconcile_journeys() == []
    assert rider.balance() == (SEED_VND - METRO_01_TO_12_VND - BUS_01_VND, 0)
