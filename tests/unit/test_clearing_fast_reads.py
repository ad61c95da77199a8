"""What a cycle reads fast is what it read before: stored states decoded with orjson are the
library's values, the fields of an event are the event's, a journey's legs replayed from its
leg events are the aggregate's, and a line's digest form is the JSON encoder's."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    UUIDAsHex,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.adapters.fast_events import OrjsonDecoding, StateFields, fast_mapper
from clearing.domain.cycle_lines import SUSPENSE_OPERATOR, CycleLine
from clearing.domain.journey_legs import LEG_FIELDS, journey_legs
from clearing.domain.movements import MONEY_EVENTS, entry_fields, entry_of, ledger_entry
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_status import PaidFrom
from ticketing.journeys.domain.leg import Leg

HANOI = timezone(timedelta(hours=7))
BOARDED = datetime(2026, 11, 23, 8, 0, tzinfo=HANOI)


def library_transcoder() -> JSONTranscoder:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DatetimeAsISO(), DecimalAsStr()):
        transcoder.register(transcoding)
    return transcoder


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),  # beyond 64 bits: the library's path
    st.text(),
    st.uuids(),
    st.datetimes(timezones=st.sampled_from([UTC, HANOI])),
    st.decimals(allow_nan=False, allow_infinity=False),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["_type_", "_data_", "a", "leg", "at"]), inner),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), VALUES, max_size=6))
def test_a_state_decoded_with_orjson_is_what_the_library_decodes(state: dict[str, Any]) -> None:
    transcoder = library_transcoder()
    try:
        stored = transcoder.encode(state)
    except (TypeError, ValueError):
        return  # a state the library cannot store either
    try:
        expected = transcoder.decode(stored)
    except Exception as error:
        with pytest.raises(type(error)):
            OrjsonDecoding(transcoder).decode(stored)
        return
    assert OrjsonDecoding(transcoder).decode(stored) == expected


def test_json_orjson_refuses_goes_through_the_librarys_path() -> None:
    transcoder = library_transcoder()
    for stored in (b'{"x": NaN}', b'{"x": 123456789012345678901234567890}', b'{"x": "\\ud800"}'):
        assert OrjsonDecoding(transcoder).decode(stored) == transcoder.decode(stored)


def test_a_transcoding_like_object_of_other_than_two_keys_is_left_as_it_is() -> None:
    transcoder = library_transcoder()
    stored = b'{"a": {"_type_": "uuid_hex", "_data_": "00", "b": 1}, "c": {"_type_": 1}}'
    assert OrjsonDecoding(transcoder).decode(stored) == transcoder.decode(stored)


@pytest.fixture
def app() -> Application[UUID]:
    return Application[UUID](env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def money_events() -> list[object]:
    """One of each money event of an account, as the ledger's commands make them."""
    made: list[object] = []
    for cls in MONEY_EVENTS:
        state: dict[str, Any] = {
            "originator_id": uuid4(),
            "originator_version": 3,
            "timestamp": datetime.now(UTC),
            "at": BOARDED,
            "transfer_id": "journey:" + uuid4().hex + ":leg:0",
            "hold_id": "journey:" + uuid4().hex + ":hold:1",
            "amount_vnd": 8_000,
            "held_vnd": 11_000,
            "refund_vnd": 5_000,
        }
        event = object.__new__(cls)
        event.__dict__.update(state)
        made.append(event)
    return made


def test_an_events_fields_are_the_events_and_make_the_same_entry(app: Application[UUID]) -> None:
    states = StateFields(app)
    for event in money_events():
        stored = app.mapper.to_stored_event(event)  # type: ignore[arg-type]
        kind = MONEY_EVENTS[type(event)]
        fields = states.fields(stored, type(event), entry_fields(kind))
        decoded = vars(app.mapper.to_domain_event(stored))
        assert fields == {name: decoded[name] for name in entry_fields(kind)}
        entry = entry_of(7, kind, stored.originator_id, fields)  # type: ignore[arg-type]
        assert entry == ledger_entry(7, app.mapper.to_domain_event(stored))
        assert fast_mapper(app).to_domain_event(stored).__dict__ == decoded


def test_an_application_storing_otherwise_keeps_its_own_mapper() -> None:
    app = Application[UUID](
        env={"PERSISTENCE_MODULE": "eventsourcing.popo", "COMPRESSOR_TOPIC": "zlib"}
    )
    assert fast_mapper(app) is app.mapper
    event = money_events()[0]
    stored = app.mapper.to_stored_event(event)  # type: ignore[arg-type]
    names = ("transfer_id", "amount_vnd", "at")
    decoded = vars(app.mapper.to_domain_event(stored))
    assert StateFields(app).fields(stored, type(event), names) == {n: decoded[n] for n in names}


def a_leg(at: datetime, *, metro: bool = False, ended: bool = True) -> Leg:
    return Leg(
        mode="metro" if metro else "bus",
        network_id="metro_2a" if metro else "bus_15k",
        route_id="2A" if metro else "107",
        from_stop_id="2A-05" if metro else "bus-long-bien",
        to_stop_id=("2A-10" if metro else "bus-my-dinh") if ended else None,
        departure=at,
        arrival=at + timedelta(minutes=15) if ended else None,
        entry_tap=str(uuid4()),
        exit_tap=str(uuid4()) if ended else None,
    )


def a_journey(first: Leg) -> Journey:
    return Journey.start(
        first_tap_id=uuid4(),
        account_id=uuid4(),
        paid_from=PaidFrom.ACCOUNT,
        rider_category="elderly",
        fare_media="card",
        service_day="2026-11-23",
        leg=first,
        at=BOARDED,
    )


def replayed(journey: Journey, events: Sequence[object]) -> None:
    legs = journey_legs(journey.id, [(type(e), vars(e)) for e in events])
    assert legs is not None
    assert (legs.rider_category, legs.fare_media) == (journey.rider_category, journey.fare_media)
    assert list(legs.legs) == journey.legs


def test_legs_replayed_from_leg_events_are_the_journeys_through_every_change() -> None:
    open_leg = a_leg(BOARDED, ended=False)
    journey = a_journey(open_leg)
    journey.end_leg(leg=a_leg(BOARDED), at=BOARDED)
    journey.price(fare_vnd=8_000, reference_vnd=8_000, transfer_discount_vnd=0, at=BOARDED)
    journey.add_leg(leg=a_leg(BOARDED + timedelta(minutes=20), metro=True, ended=False), at=BOARDED)
    journey.end_leg(leg=a_leg(BOARDED + timedelta(minutes=20), metro=True), at=BOARDED)
    repaired = [a_leg(BOARDED + timedelta(minutes=18)), a_leg(BOARDED + timedelta(minutes=40))]
    journey.repair_legs(first_index=1, legs=repaired, at=BOARDED)
    journey.price(fare_vnd=9_000, reference_vnd=9_000, transfer_discount_vnd=0, at=BOARDED)
    later = a_journey(a_leg(BOARDED + timedelta(minutes=70), metro=True))
    later.price(fare_vnd=8_000, reference_vnd=8_000, transfer_discount_vnd=0, at=BOARDED)
    journey.join_legs(later, at=BOARDED)
    events = list(journey.collect_events())
    assert {type(e) for e in events} >= set(LEG_FIELDS)
    replayed(journey, events)
    later.merge_into(journey.id, at=BOARDED)
    replayed(later, list(later.collect_events()))


def test_events_that_start_no_journey_give_none() -> None:
    journey = a_journey(a_leg(BOARDED))
    started, *_ = journey.collect_events()
    journey.end_leg(leg=a_leg(BOARDED), at=BOARDED)
    ended = list(journey.collect_events())
    assert journey_legs(journey.id, [(type(e), vars(e)) for e in ended]) is None
    assert journey_legs(journey.id, []) is None
    assert journey_legs(journey.id, [(type(started), vars(started))]) is not None


TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=2**40),
    st.integers(min_value=1, max_value=2**40),
    st.integers(min_value=-(2**50), max_value=2**50),
    st.booleans(),
    st.lists(TEXT, min_size=8, max_size=8),
)
def test_a_lines_digest_form_is_the_json_encoders(
    line_no: int, notification_id: int, amount_vnd: int, suspense: bool, texts: list[str]
) -> None:
    operator, category, origin, transaction, reference, code, reason, resolves = texts
    line = CycleLine(
        line_no,
        notification_id,
        SUSPENSE_OPERATOR if suspense else operator or "op",
        amount_vnd,
        category,
        origin,
        transaction,
        reference,
        (code or "c") if suspense else "",
        reason,
        resolves,
    )
    fields = [getattr(line, name) for name in CycleLine.__slots__]
    expected = json.dumps(fields, ensure_ascii=True, separators=(",", ":")) + "\n"
    assert line.canonical() == expected.encode()


def test_a_line_with_a_value_of_another_type_is_written_by_the_encoder() -> None:
    line = CycleLine(1, 2, "op", 3, "c", "o", "t", "r")
    odd = CycleLine(1, 2, "op", True, "c", "o", "t", "r")
    assert odd.canonical() == b'[1,2,"op",true,"c","o","t","r","","",""]\n'
    assert line.canonical() == b'[1,2,"op",3,"c","o","t","r","","",""]\n'
