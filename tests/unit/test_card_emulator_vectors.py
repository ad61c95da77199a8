"""The emulated TLC1 card against spec/card-vectors.json, an independent implementation's trace.

Also home of the small test terminal the other card-emulator tests drive the card with: it builds
the APDUs of spec/CARD.md and computes MACs with `hardware.tlc1.crypto`, nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware.emulator.card import ATR, EmulatedCard
from hardware.emulator.key_file import card_keys_from_master
from hardware.tlc1.constants import (
    RECORD_BYTES,
    KeyLevel,
)
from hardware.tlc1.records import (
    Contract,
    Environment,
    Event,
    EventKind,
    FieldRangeError,
    PaddingError,
    Purse,
    RecordLengthError,
    RecordVersionError,
    is_blank,
)
from tests.builders.card_emulator import (
    MASTER_KEYS,
    SERIAL,
    TRACE,
    VECTORS,
    blank_card,
    step_name,
    trace_bytes,
    trace_card_challenges,
)

# --- APDUs of spec/CARD.md, "Commands" -----------------------------------------------------------


# --- the trace -----------------------------------------------------------------------------------


def test_blank_card_answers_every_trace_command_byte_for_byte() -> None:
    card = blank_card(challenges=trace_card_challenges())
    for index, exchange in enumerate(TRACE):
        response = card.transmit(bytes.fromhex(exchange["command"]))
        assert response.hex().upper() == exchange["response"], f"APDU {index}: {step_name(index)}"


def test_trace_leaves_the_purse_the_vectors_expect_and_four_sessions_used() -> None:
    card = blank_card(challenges=trace_card_challenges())
    for exchange in TRACE:
        card.transmit(bytes.fromhex(exchange["command"]))
    assert card.image.purse_vnd == VECTORS["final_purse"] == 42_000
    assert card.image.transaction_counter == VECTORS["initial_transaction_counter"] - 4


def test_card_keys_are_diversified_from_the_master_keys_as_the_vectors_list() -> None:
    expected = {KeyLevel(int(level)): key for level, key in VECTORS["card_level_keys"].items()}
    assert {
        level: key.hex() for level, key in card_keys_from_master(MASTER_KEYS, SERIAL).items()
    } == (expected)


def test_power_on_answers_a_contactless_atr_whose_check_byte_is_right() -> None:
    card = EmulatedCard.from_master_keys(MASTER_KEYS, SERIAL)
    atr = card.power_on()
    check = 0
    for byte in atr[1:]:
        check ^= byte
    assert atr == ATR
    assert atr[:4] == bytes.fromhex("3B848001")  # 14443-4 via PC/SC: T=0 then T=1, 4 history bytes
    assert check == 0  # TCK makes the XOR of T0..TCK zero


# --- the records of the trace --------------------------------------------------------------------

PERSONALISATION_UPDATE = 2
BUS_BOARDING_APPEND = 11
RELOAD_RATIFYING_READ = 7


def test_environment_written_at_personalisation_decodes_and_encodes_back_byte_exact() -> None:
    raw = trace_bytes(PERSONALISATION_UPDATE, "command")[5:]
    environment = Environment.decode(raw)
    assert environment == Environment(
        network_id=0x0101,
        issued_on=0,
        rider_category=1,
        account_id=UUID("6f1c2b9e-3d4a-4b5c-8d7e-0123456789ab"),
    )
    assert environment.encode() == raw


def test_event_appended_at_bus_boarding_decodes_and_encodes_back_byte_exact() -> None:
    raw = trace_bytes(BUS_BOARDING_APPEND, "command")[5:]
    event = Event.decode(raw)
    assert event.kind is EventKind.BUS_BOARDING
    assert (event.at, event.network_id, event.location, event.validator) == (
        1_793_000_000,
        257,
        12,
        77,
    )
    assert (event.contract, event.amount) == (0, 8_000)
    assert event.encode() == raw


def test_purse_read_after_the_reload_decodes_to_50000_vnd() -> None:
    raw = trace_bytes(RELOAD_RATIFYING_READ, "response")[:RECORD_BYTES]
    assert Purse.decode(raw) == Purse(50_000)
    assert Purse(50_000).encode() == raw


def test_blank_contract_record_is_an_empty_slot_and_a_blank_event_is_not_an_event() -> None:
    blank = bytes(RECORD_BYTES)
    assert is_blank(blank)
    assert Contract.decode(blank) == Contract.empty()
    with pytest.raises(RecordVersionError):
        Event.decode(blank)


# --- record codecs: the negative space -----------------------------------------------------------

EVENT = Event(
    at=1_793_000_000,
    kind=EventKind.METRO_ENTRY,
    network_id=1,
    location=2,
    validator=3,
    contract=1,
    amount=0,
)


@pytest.mark.parametrize("length", [0, RECORD_BYTES - 1, RECORD_BYTES + 1])
def test_records_of_the_wrong_length_are_refused(length: int) -> None:
    raw = EVENT.encode().ljust(length, b"\x00")[:length]
    with pytest.raises(RecordLengthError):
        Event.decode(raw)


def test_bytes_after_the_fields_must_be_zero() -> None:
    raw = bytearray(EVENT.encode())
    raw[-1] = 1
    with pytest.raises(PaddingError):
        Event.decode(bytes(raw))


def test_unknown_record_versions_are_refused() -> None:
    raw = bytearray(EVENT.encode())
    raw[0] = 2
    with pytest.raises(RecordVersionError):
        Event.decode(bytes(raw))


def test_unknown_event_kinds_are_refused() -> None:
    raw = bytearray(EVENT.encode())
    raw[5] = 6  # the kind byte follows version u8 and at u32
    with pytest.raises(FieldRangeError):
        Event.decode(bytes(raw))


@pytest.mark.parametrize(
    "build",
    [
        lambda: replace(EVENT, amount=1 << 24),
        lambda: replace(EVENT, contract=5),
        lambda: Contract(product=1, valid_from=0, valid_until=1 << 32, route=0, network_id=1),
        lambda: Contract(version=0, product=7, valid_from=0, valid_until=0, route=0, network_id=0),
        lambda: Environment(
            network_id=1 << 16, issued_on=0, rider_category=0, account_id=UUID(int=0)
        ),
        lambda: Purse(-1),
        lambda: Purse(1 << 24),
    ],
    ids=[
        "amount over u24",
        "contract over 4",
        "valid_until over u32",
        "empty slot with data",
        "network over u16",
        "negative purse",
        "purse over u24",
    ],
)
def test_fields_out_of_range_are_refused(build: Callable[[], object]) -> None:
    with pytest.raises(FieldRangeError):
        build()


@given(
    at=st.integers(0, (1 << 32) - 1),
    kind=st.sampled_from(EventKind),
    network_id=st.integers(0, (1 << 16) - 1),
    location=st.integers(0, (1 << 32) - 1),
    contract=st.integers(0, 4),
    amount=st.integers(0, (1 << 24) - 1),
)
def test_every_event_in_range_survives_encoding(
    at: int, kind: EventKind, network_id: int, location: int, contract: int, amount: int
) -> None:
    event = Event(
        at=at,
        kind=kind,
        network_id=network_id,
        location=location,
        validator=location,
        contract=contract,
        amount=amount,
    )
    raw = event.encode()
    assert len(raw) == RECORD_BYTES
    assert Event.decode(raw) == event
