"""A tap's facts are declared once (`TapFacts`): the tap's event is them, the tap path checks
and stores them, and the journey follower reads them."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from ticketing.shared.domain.invariants import InvariantViolated
from ticketing.taps.domain.tap import InvalidTap, Tap, recorded_state
from ticketing.taps.domain.tap_facts import TAP_FACT_NAMES, TapFacts, tap_facts

TAPPED = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
LIBRARY_FIELDS = ("originator_id", "originator_version", "timestamp", "originator_topic")


def qr_tap() -> TapFacts:
    return TapFacts(
        validator_id=17,
        seq=1,
        tapped_at=TAPPED,
        recorded_at=TAPPED,
        validator_kind="bus",
        network_id=1,
        location=101,
        medium="qr",
        device_decision="accepted",
        device_reason="ok",
        verification="accepted",
        refusal_reason=None,
        code_text="TL1.code",
        card_id=uuid4(),
        generated_at=1_700_000_000,
        counter=3,
    )


def test_the_tap_event_holds_the_declared_facts_after_the_librarys_own_fields() -> None:
    names = tuple(field.name for field in fields(Tap.Recorded))
    assert names == (*LIBRARY_FIELDS, *TAP_FACT_NAMES)
    assert issubclass(Tap.Recorded, TapFacts)
    assert Tap.Recorded.TOPIC == "ticketing.Tap.Recorded"


def test_a_taps_stored_state_is_its_facts_in_declared_order() -> None:
    facts = qr_tap()
    state = recorded_state(facts)
    assert list(state) == ["timestamp", "originator_topic", *TAP_FACT_NAMES, "class_version"]
    assert tap_facts(state) == facts


def test_a_tap_card_fields_default_to_none_and_its_epoch_to_zero() -> None:
    facts = qr_tap()
    assert (facts.serial, facts.transaction_counter, facts.card_mac, facts.epoch) == (
        None,
        None,
        None,
        0,
    )


def test_a_refused_tap_without_its_reason_and_an_accepted_one_with_a_reason_are_refused() -> None:
    with pytest.raises(InvalidTap):
        recorded_state(replace(qr_tap(), verification="refused"))
    with pytest.raises(InvalidTap):
        recorded_state(replace(qr_tap(), refusal_reason="code_replayed"))


def test_a_tap_with_an_unknown_medium_or_a_naive_time_is_refused() -> None:
    with pytest.raises(InvalidTap):
        recorded_state(replace(qr_tap(), medium="nfc"))
    with pytest.raises(InvariantViolated):
        recorded_state(replace(qr_tap(), tapped_at=TAPPED.replace(tzinfo=None)))
