"""Codecs for the 29-byte TLC1 records (spec/CARD.md, "Files"): pure functions over bytes.

Every record is a fixed sequence of big-endian unsigned integers followed by zero padding up to 29
bytes. Decoding is strict (exact length, known version, zero padding, every field in range), so
`decode(raw).encode() == raw` holds for every record that decodes at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Self
from uuid import UUID

from hardware.tlc1.constants import (
    COUNTER_BYTES,
    PURSE_MAX_VND,
    RECORD_BYTES,
    RECORDS_PER_FILE,
    Sfi,
)

RECORD_VERSION = 1
EMPTY_CONTRACT_VERSION = 0
UUID_BYTES = 16
U8_BYTES, U16_BYTES, U32_BYTES = 1, 2, 4
AMOUNT_BYTES = 3  # event amounts are u24 VND, like the purse
CONTRACT_PURSE = 0  # an event's `contract` 0 means "paid from the purse"
CONTRACT_RECORD_MAX = RECORDS_PER_FILE[Sfi.CONTRACTS]
BLANK_RECORD = bytes(RECORD_BYTES)


class EventKind(IntEnum):
    METRO_ENTRY = 1
    METRO_EXIT = 2
    BUS_BOARDING = 3
    INSPECTION = 4
    PARKING = 5


class RecordError(ValueError):
    """A record's bytes or fields break the layout of CARD.md."""

    code = "record_invalid"


class RecordLengthError(RecordError):
    code = "record_wrong_length"


class RecordVersionError(RecordError):
    code = "record_unknown_version"


class FieldRangeError(RecordError):
    code = "record_field_out_of_range"


class PaddingError(RecordError):
    code = "record_padding_not_zero"


def is_blank(raw: bytes) -> bool:
    """A record never written (a new card's event log and contracts are all zero)."""
    return raw == BLANK_RECORD


def _check_field(record: str, name: str, value: int, width: int, minimum: int = 0) -> None:
    maximum = (1 << (8 * width)) - 1
    if not minimum <= value <= maximum:
        raise FieldRangeError(f"{record}.{name} = {value} is outside {minimum}..{maximum}")


def _pack(fields: Sequence[tuple[int, int]]) -> bytes:
    """Big-endian `(value, width)` fields, then zeros up to the record size."""
    body = b"".join(value.to_bytes(width, "big") for value, width in fields)
    return body.ljust(RECORD_BYTES, b"\x00")


def _unpack(record: str, raw: bytes, widths: Sequence[int]) -> list[int]:
    if len(raw) != RECORD_BYTES:
        raise RecordLengthError(f"{record}: a record has {RECORD_BYTES} bytes, not {len(raw)}")
    values = []
    offset = 0
    for width in widths:
        values.append(int.from_bytes(raw[offset : offset + width], "big"))
        offset += width
    if any(raw[offset:]):
        raise PaddingError(f"{record}: the bytes after the fields must be zero")
    return values


def _event_kind(value: int) -> EventKind:
    try:
        return EventKind(value)
    except ValueError:
        raise FieldRangeError(f"event.kind = {value} is not a known event kind") from None


def _check_version(record: str, version: int, allowed: frozenset[int]) -> None:
    if version not in allowed:
        raise RecordVersionError(f"{record}: version {version} is not one of {sorted(allowed)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    """Record 1 of SFI 07: who the card belongs to. Written once, at personalisation."""

    version: int = RECORD_VERSION
    network_id: int
    issued_on: int  # unix seconds
    rider_category: int  # registry in spec/QR.md
    account_id: UUID

    _WIDTHS = (U8_BYTES, U16_BYTES, U32_BYTES, U8_BYTES, UUID_BYTES)

    def __post_init__(self) -> None:
        _check_version("environment", self.version, frozenset({RECORD_VERSION}))
        _check_field("environment", "network_id", self.network_id, U16_BYTES)
        _check_field("environment", "issued_on", self.issued_on, U32_BYTES)
        _check_field("environment", "rider_category", self.rider_category, U8_BYTES)

    def encode(self) -> bytes:
        values = (
            self.version,
            self.network_id,
            self.issued_on,
            self.rider_category,
            self.account_id.int,
        )
        return _pack(list(zip(values, self._WIDTHS, strict=True)))

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        version, network_id, issued_on, category, account = _unpack("environment", raw, cls._WIDTHS)
        return cls(
            version=version,
            network_id=network_id,
            issued_on=issued_on,
            rider_category=category,
            account_id=UUID(int=account),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """A record of SFI 08, the cyclic log of the last three events (newest is record 1)."""

    version: int = RECORD_VERSION
    at: int  # unix seconds
    kind: EventKind
    network_id: int
    location: int  # stop, station or lot id
    validator: int
    contract: int  # CONTRACT_PURSE, or the contract record 1..4 that covered the event
    amount: int  # VND

    _WIDTHS = (
        U8_BYTES,
        U32_BYTES,
        U8_BYTES,
        U16_BYTES,
        U32_BYTES,
        U32_BYTES,
        U8_BYTES,
        AMOUNT_BYTES,
    )

    def __post_init__(self) -> None:
        _check_version("event", self.version, frozenset({RECORD_VERSION}))
        _event_kind(self.kind)
        _check_field("event", "at", self.at, U32_BYTES)
        _check_field("event", "network_id", self.network_id, U16_BYTES)
        _check_field("event", "location", self.location, U32_BYTES)
        _check_field("event", "validator", self.validator, U32_BYTES)
        _check_field("event", "amount", self.amount, AMOUNT_BYTES)
        if not CONTRACT_PURSE <= self.contract <= CONTRACT_RECORD_MAX:
            raise FieldRangeError(f"event.contract = {self.contract} is outside 0..4")

    def encode(self) -> bytes:
        values = (
            self.version,
            self.at,
            int(self.kind),
            self.network_id,
            self.location,
            self.validator,
            self.contract,
            self.amount,
        )
        return _pack(list(zip(values, self._WIDTHS, strict=True)))

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        values = _unpack("event", raw, cls._WIDTHS)
        version, at, kind, network_id, location, validator, contract, amount = values
        # The version says how to read the rest, so a blank record fails on it, not on its kind.
        _check_version("event", version, frozenset({RECORD_VERSION}))
        return cls(
            version=version,
            at=at,
            kind=_event_kind(kind),
            network_id=network_id,
            location=location,
            validator=validator,
            contract=contract,
            amount=amount,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Contract:
    """A record of SFI 09: a pass. Version 0 is an empty slot, and then every field is zero."""

    version: int = RECORD_VERSION
    product: int
    valid_from: int  # unix seconds
    valid_until: int  # unix seconds
    route: int  # 0 = every route of the network
    network_id: int

    _WIDTHS = (U8_BYTES, U16_BYTES, U32_BYTES, U32_BYTES, U16_BYTES, U16_BYTES)

    def __post_init__(self) -> None:
        _check_version(
            "contract", self.version, frozenset({EMPTY_CONTRACT_VERSION, RECORD_VERSION})
        )
        _check_field("contract", "product", self.product, U16_BYTES)
        _check_field("contract", "valid_from", self.valid_from, U32_BYTES)
        _check_field("contract", "valid_until", self.valid_until, U32_BYTES)
        _check_field("contract", "route", self.route, U16_BYTES)
        _check_field("contract", "network_id", self.network_id, U16_BYTES)
        # An empty slot carrying data is ambiguous (a half-deleted pass?): refuse it both ways.
        if self.is_empty and any(self._values()[1:]):
            raise FieldRangeError("contract: an empty slot (version 0) has every field zero")

    @classmethod
    def empty(cls) -> Self:
        return cls(
            version=EMPTY_CONTRACT_VERSION,
            product=0,
            valid_from=0,
            valid_until=0,
            route=0,
            network_id=0,
        )

    @property
    def is_empty(self) -> bool:
        return self.version == EMPTY_CONTRACT_VERSION

    def _values(self) -> tuple[int, ...]:
        return (
            self.version,
            self.product,
            self.valid_from,
            self.valid_until,
            self.route,
            self.network_id,
        )

    def encode(self) -> bytes:
        return _pack(list(zip(self._values(), self._WIDTHS, strict=True)))

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        version, product, valid_from, valid_until, route, network_id = _unpack(
            "contract", raw, cls._WIDTHS
        )
        return cls(
            version=version,
            product=product,
            valid_from=valid_from,
            valid_until=valid_until,
            route=route,
            network_id=network_id,
        )


@dataclass(frozen=True, slots=True)
class Purse:
    """Record 1 of SFI 19: the stored value in the first three bytes, zeros after."""

    value_vnd: int

    def __post_init__(self) -> None:
        if not 0 <= self.value_vnd <= PURSE_MAX_VND:
            raise FieldRangeError(f"purse = {self.value_vnd} VND is outside 0..{PURSE_MAX_VND}")

    def encode(self) -> bytes:
        return _pack([(self.value_vnd, COUNTER_BYTES)])

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        (value_vnd,) = _unpack("purse", raw, (COUNTER_BYTES,))
        return cls(value_vnd)
