"""Who a journey's taps are, and whose clock cuts its day: a re-enrolled validator's taps
numbered from 1 again are other taps, and a service day runs on the feed's own timezone."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.builders.journeys import BALANCE_VND, BUS_01, START, build
from ticketing.fares.feed import Feed
from ticketing.fares.loader import HANOI_FEED_DIR, load_feed
from ticketing.taps.application.ingestion import QrTap

ROUTE_01_FARE_VND = 10_000


def test_a_re_enrolled_validator_s_rides_numbered_from_1_again_are_journeys_of_their_own() -> None:
    # A wiped validator, enrolled again, numbers its taps from 1: the same seqs in a new epoch
    # are other taps, so they begin other journeys and each ride is charged.
    world = build()
    account_id, phone = world.rider()
    for after_min in (0, 20):
        world.tap(phone, BUS_01, after_min)
    assert world.taps.enrol_validator(BUS_01).epoch == 1
    world.seq = 0
    for after_min in (120, 140):
        at = START + timedelta(minutes=after_min)
        world.clock.now = at
        world.seq += 1
        world.counter += 1
        code = phone.code(int(at.timestamp()) - 2, world.counter)
        tap = QrTap(world.seq, at, "accepted", "accepted", code)
        [result] = world.taps.ingest_batch(BUS_01, [tap], epoch=1)
        assert result.status == "accepted", result
    world.follow()
    assert [j.charged_vnd for j in world.journeys_of(account_id)] == [ROUTE_01_FARE_VND] * 2
    assert world.balance(account_id) == (BALANCE_VND - 2 * ROUTE_01_FARE_VND, 0)


def feed_in(zone: str) -> Feed:
    """The Hanoi feed, its agency in another timezone."""
    texts = {p.name: p.read_text() for p in HANOI_FEED_DIR.glob("*.txt")}
    texts["agency.txt"] = (
        f"agency_id,agency_name,agency_url,agency_timezone\nhn,Hanoi,https://example.org,{zone}\n"
    )
    return load_feed(texts)


@pytest.mark.parametrize(
    ("zone", "day"), [("Asia/Ho_Chi_Minh", "2026-11-24"), ("UTC", "2026-11-23")]
)
def test_a_journey_s_service_day_is_cut_on_the_feed_s_own_clock(zone: str, day: str) -> None:
    # 22:00 UTC is 05:00 the next morning in Hanoi, past the 04:00 start of a service day.
    world = build(feed_in(zone))
    account_id, phone = world.rider()
    world.tap(phone, BUS_01, 21 * 60)
    world.tap(phone, BUS_01, 21 * 60 + 20)
    world.follow()
    [journey] = world.journeys_of(account_id)
    assert journey.service_day == day
