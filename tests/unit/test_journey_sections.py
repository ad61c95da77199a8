"""The journey follower applies taps in sections: many taps, one ledger batch, one save with one
tracking record. A crash after the ledger's commit re-applies the section and charges once; a
charge the ledger refuses in the middle of a section is recorded on its journey alone while the
other taps of the section still charge; what other writers change between sections is read again."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.application import project_aggregate

from tests.builders.journeys import (
    BALANCE_VND,
    BUS_01,
    GATE_IN_01,
    GATE_OUT_12,
    World,
    build,
    penniless_rider,
)
from ticketing.accounts.domain.commands import TopUp
from ticketing.journeys.application.journeys import RIDER_BOOK_SNAPSHOT_INTERVAL
from ticketing.journeys.domain.journey_status import JourneyStatus
from ticketing.journeys.domain.rider_journeys import RiderJourneys

BUS_01_VND = 10_000
METRO_01_TO_12_VND = 15_000
DAY_PASS_2A_VND = 30_000


class Crash(Exception):
    """The process dies after the ledger committed and before the section is saved."""


@pytest.fixture
def world() -> World:
    return build()


def count_saves(world: World, monkeypatch: pytest.MonkeyPatch, *, crashes: int = 0) -> list[int]:
    """Counts the follower's tracked saves (each one transaction); the first `crashes` crash."""
    record = world.journeys._record
    saves: list[int] = []

    def record_or_crash(processing: Any) -> Any:
        saves.append(len(processing.events))
        if len(saves) <= crashes:
            raise Crash
        return record(processing)

    monkeypatch.setattr(world.journeys, "_record", record_or_crash)
    return saves


def test_a_section_of_taps_is_saved_once_with_the_tracking_record_of_its_last_tap(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    riders = [world.rider() for _ in range(3)]
    for index, (_, phone) in enumerate(riders):
        world.tap(phone, GATE_IN_01, index)
        world.tap(phone, GATE_OUT_12, 30 + index)
        world.tap(phone, BUS_01, 60 + index)
        world.tap(phone, BUS_01, 80 + index)
    saves = count_saves(world, monkeypatch)
    assert world.journeys.catch_up() == 12
    assert len(saves) == 1
    assert world.journeys.lag() == 0
    for account_id, _ in riders:
        assert world.balance(account_id) == (BALANCE_VND - METRO_01_TO_12_VND - BUS_01_VND, 0)


def test_a_crash_after_the_ledger_committed_a_section_then_the_section_again_charges_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    riders = [world.rider() for _ in range(2)]
    for index, (_, phone) in enumerate(riders):
        world.tap(phone, GATE_IN_01, index)
        world.tap(phone, GATE_OUT_12, 30 + index)
        world.tap(phone, BUS_01, 60 + index)
    count_saves(world, monkeypatch, crashes=2)
    for _ in range(2):
        with pytest.raises(Crash):
            world.journeys.catch_up()
        assert world.journeys.position() == 0
        for account_id, _ in riders:
            # The metro fare moved; the follower's record of it did not.
            assert world.balance(account_id) == (BALANCE_VND - METRO_01_TO_12_VND, 0)
    assert world.journeys.catch_up() == 6
    for _, phone in riders:
        world.tap(phone, BUS_01, 80)
    world.follow()
    for account_id, _ in riders:
        assert world.balance(account_id) == (BALANCE_VND - METRO_01_TO_12_VND - BUS_01_VND, 0)
        # The bus within the hour joined the metro ride: one journey, charged once.
        [journey] = world.journeys_of(account_id)
        fare_vnd = METRO_01_TO_12_VND + BUS_01_VND
        assert (journey.status, journey.fare_vnd, journey.charged_vnd) == (
            JourneyStatus.ENDED,
            fare_vnd,
            fare_vnd,
        )


def test_a_section_ending_with_a_pending_hold_applied_again_after_a_crash_holds_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    account_id, phone = world.rider()
    world.tap(phone, GATE_IN_01, 0)
    count_saves(world, monkeypatch, crashes=1)
    with pytest.raises(Crash):
        world.journeys.catch_up()
    assert world.balance(account_id) == (BALANCE_VND, METRO_01_TO_12_VND)
    assert world.journeys.catch_up() == 1
    assert world.balance(account_id) == (BALANCE_VND, METRO_01_TO_12_VND)
    world.tap(phone, GATE_OUT_12, 30)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - METRO_01_TO_12_VND, 0)


def test_a_charge_refused_in_the_middle_of_a_section_is_recorded_and_the_others_still_charge(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rich, rich_phone = world.rider()
    poor, poor_phone = penniless_rider(world)
    other, other_phone = world.rider()
    world.tap(rich_phone, BUS_01, 0)
    world.tap(poor_phone, BUS_01, 1)
    world.tap(other_phone, BUS_01, 2)
    world.tap(rich_phone, BUS_01, 20)
    world.tap(poor_phone, BUS_01, 21)  # the debit the ledger refuses: no money, no overdraft
    world.tap(other_phone, BUS_01, 22)
    saves = count_saves(world, monkeypatch)
    assert world.journeys.catch_up() == 6
    # The four taps before the refused one, the refused one alone, the one after it.
    assert len(saves) == 3
    assert world.balance(rich) == (BALANCE_VND - BUS_01_VND, 0)
    assert world.balance(other) == (BALANCE_VND - BUS_01_VND, 0)
    assert world.balance(poor) == (0, 0)
    world.view_follower.catch_up()
    [unpaid] = world.journeys_of(poor)
    assert (unpaid.status, unpaid.fare_vnd, unpaid.charged_vnd) == (
        JourneyStatus.UNPAID,
        BUS_01_VND,
        0,
    )
    assert unpaid.reason_code == "insufficient_funds"


def test_a_pass_bought_between_two_sections_covers_the_ride_of_the_second(world: World) -> None:
    account_id, phone = world.rider()
    world.tap(phone, GATE_IN_01, 0)
    world.tap(phone, GATE_OUT_12, 30)
    world.follow()  # the follower now remembers that the rider holds no pass
    world.passes.buy(account_id, purchase_id="day-1", fare_product_id="metro_2a_day")
    # Hours later, so the ride is a journey of its own rather than a transfer.
    world.tap(phone, GATE_IN_01, 240)
    world.tap(phone, GATE_OUT_12, 270)
    world.follow()
    paid_vnd = METRO_01_TO_12_VND + DAY_PASS_2A_VND
    assert world.balance(account_id) == (BALANCE_VND - paid_vnd, 0)
    assert [j.fare_vnd for j in world.journeys_of(account_id)] == [METRO_01_TO_12_VND, 0]


SHORT_RIDER_TAPS = 60


def test_a_rider_without_money_costs_each_tap_about_one_application(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every entry's hold is refused. Before, each refusal applied the rest of the section again,
    # so a section of n such taps cost about n * n / 2 applications.
    poor, phone = penniless_rider(world)
    _, rich_phone = world.rider()
    for index in range(SHORT_RIDER_TAPS):
        world.tap(phone, GATE_IN_01, index * 0.1)
    world.tap(rich_phone, BUS_01, 10)
    apply = world.journeys._apply
    calls = {"count": 0}

    def counted(*args: Any, **kwargs: Any) -> None:
        calls["count"] += 1
        apply(*args, **kwargs)

    monkeypatch.setattr(world.journeys, "_apply", counted)
    assert world.journeys.catch_up() == SHORT_RIDER_TAPS + 1
    assert calls["count"] <= 2 * (SHORT_RIDER_TAPS + 1)
    assert world.balance(poor) == (0, 0)
    world.view_follower.catch_up()
    refused = [j.reason_code for j in world.journeys_of(poor)]
    assert refused == ["insufficient_funds"] * SHORT_RIDER_TAPS


def test_a_busy_rider_s_book_is_snapshotted_and_reads_back_the_same(world: World) -> None:
    account_id, phone = world.rider()
    for index in range(RIDER_BOOK_SNAPSHOT_INTERVAL + 10):
        world.tap(phone, BUS_01, index * 0.5)
    world.journeys.catch_up()
    book_id = RiderJourneys.create_id(account_id)
    snapshots = world.journeys.snapshots
    assert snapshots is not None
    assert list(snapshots.get(book_id))  # a read starts from it, not from the first event
    read: RiderJourneys = world.journeys.repository.get(book_id)
    replayed = project_aggregate(None, world.journeys.repository.event_store.get(book_id))
    assert vars(read) == vars(replayed)


SHORT_RIDER_PULLS = 10


def test_a_rider_refused_once_is_applied_alone_in_later_pulls_until_a_charge_passes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    poor, poor_phone = penniless_rider(world)
    _, rich_phone = world.rider()
    world.tap(poor_phone, BUS_01, 0)
    world.tap(poor_phone, BUS_01, 1)
    world.follow()  # the ride's debit refused for lack of money: remembered
    assert poor in world.journeys._short
    apply = world.journeys._apply
    calls = {"count": 0}

    def counted(*args: Any, **kwargs: Any) -> None:
        calls["count"] += 1
        apply(*args, **kwargs)

    monkeypatch.setattr(world.journeys, "_apply", counted)
    for pull in range(SHORT_RIDER_PULLS):
        world.tap(poor_phone, BUS_01, 90 * (pull + 1))
        world.tap(rich_phone, BUS_01, 90 * (pull + 1) + 1)
        assert world.journeys.catch_up() == 2
    # Each pull: the rider short of money alone, then the other. Forgotten between pulls, the
    # two taps were applied as a section, thrown away at the refusal, and applied again.
    assert calls["count"] == 2 * SHORT_RIDER_PULLS
    assert world.balance(poor) == (0, 0)
    world.ledger.execute(TopUp(poor, BALANCE_VND, "momo-after-the-refusals"))
    world.tap(poor_phone, BUS_01, 90 * (SHORT_RIDER_PULLS + 2))  # boarding: nothing to pay
    world.journeys.catch_up()
    assert poor in world.journeys._short
    world.tap(poor_phone, BUS_01, 90 * (SHORT_RIDER_PULLS + 2) + 20)  # alighting: the debit
    world.journeys.catch_up()
    assert poor not in world.journeys._short  # paid with nothing refused: back to sections
    assert world.balance(poor)[0] < BALANCE_VND
