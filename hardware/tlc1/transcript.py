"""Reading a secure session's transcript (spec/CARD.md, "Keys and MACs") after the fact.

A transcript is the OPEN answer's data (card challenge, transaction counter, ratified flag, and
the record OPEN read, if it read one) followed by every later command APDU and its full
response, in order. The card's MAC covers it, so once the MAC verifies, what it shows is what
the card did: the backend reads the purse the session left from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware.tlc1.constants import CHALLENGE_BYTES, COUNTER_BYTES, RECORD_BYTES, Ins, Sfi, Sw

OPEN_DATA_BYTES = CHALLENGE_BYTES + COUNTER_BYTES + 1
HEADER_BYTES = 4
SW_BYTES = 2
# Response data a command returns on success (its status word follows).
RESPONSE_BYTES = {
    Ins.READ_RECORD: RECORD_BYTES,
    Ins.DECREASE: COUNTER_BYTES,
    Ins.INCREASE: COUNTER_BYTES,
    Ins.UPDATE_RECORD: 0,
    Ins.APPEND_RECORD: 0,
}
# Commands whose body is data (Lc then data); DECREASE and INCREASE add an Le byte after it.
WITH_DATA = frozenset({Ins.UPDATE_RECORD, Ins.APPEND_RECORD, Ins.DECREASE, Ins.INCREASE})
WITH_LE = frozenset({Ins.DECREASE, Ins.INCREASE})
PURSE_READ_P2 = (Sfi.PURSE << 3) | 4  # READ RECORD's P2 names the file this way
PURSE_CHANGE_P2 = Sfi.PURSE << 3  # DECREASE's and INCREASE's P2 this way
OK = Sw.OK.to_bytes(SW_BYTES, "big")


class TranscriptError(ValueError):
    """The bytes are not a transcript of TLC1 session commands."""


@dataclass(frozen=True)
class Exchange:
    """One command of the session and the card's answer."""

    apdu: bytes
    data: bytes  # the response data, empty on an error
    sw: int

    @property
    def ins(self) -> int:
        return self.apdu[1]


@dataclass(frozen=True)
class Transcript:
    transaction_counter: int
    ratified: bool
    exchanges: tuple[Exchange, ...]

    @property
    def purse_decreased_vnd(self) -> int:
        """What the session took from the purse: the sum of its successful DECREASEs."""
        taken = 0
        for exchange in self.exchanges:
            decrease = exchange.ins == Ins.DECREASE and exchange.apdu[3] == PURSE_CHANGE_P2
            if exchange.sw == Sw.OK and decrease:
                # The amount is the u24 after the header and Lc.
                body = exchange.apdu[HEADER_BYTES + 1 :]
                taken += int.from_bytes(body[:COUNTER_BYTES], "big")
        return taken

    @property
    def purse_after_vnd(self) -> int | None:
        """The purse value the session left, if any command showed it (a DECREASE or INCREASE
        answers the new value; a READ of the purse record shows it); None if none did."""
        purse: int | None = None
        for exchange in self.exchanges:
            if exchange.sw != Sw.OK:
                continue
            changed = exchange.ins in (Ins.DECREASE, Ins.INCREASE)
            if (changed and exchange.apdu[3] == PURSE_CHANGE_P2) or (
                exchange.ins == Ins.READ_RECORD and exchange.apdu[3] == PURSE_READ_P2
            ):
                # Both answer the purse value first (a u24), then the rest of the record.
                purse = int.from_bytes(exchange.data[:COUNTER_BYTES], "big")
        return purse


def parse_transcript(raw: bytes) -> Transcript:
    """Splits a transcript into its exchanges; raises `TranscriptError` if it is not one."""
    if len(raw) < OPEN_DATA_BYTES:
        raise TranscriptError("shorter than an OPEN answer")
    counter = int.from_bytes(raw[CHALLENGE_BYTES : OPEN_DATA_BYTES - 1], "big")
    ratified = raw[OPEN_DATA_BYTES - 1] == 0
    # OPEN may have read a record into its answer; only one reading parses to the end.
    for opening in (OPEN_DATA_BYTES, OPEN_DATA_BYTES + RECORD_BYTES):
        try:
            exchanges = _exchanges(raw, opening)
        except TranscriptError:
            continue
        return Transcript(counter, ratified, exchanges)
    raise TranscriptError("the commands after the OPEN answer do not parse")


def _exchanges(raw: bytes, start: int) -> tuple[Exchange, ...]:
    if start > len(raw):
        raise TranscriptError("shorter than this OPEN answer")
    found: list[Exchange] = []
    at = start
    while at < len(raw):
        if len(raw) - at < HEADER_BYTES + 1:
            raise TranscriptError(f"a truncated command at byte {at}")
        ins = raw[at + 1]
        if raw[at] != 0 or ins not in RESPONSE_BYTES:
            raise TranscriptError(f"no session command at byte {at}")
        length = HEADER_BYTES + 1
        if ins in WITH_DATA:
            length += raw[at + HEADER_BYTES] + (1 if ins in WITH_LE else 0)
        apdu = raw[at : at + length]
        at += length
        expected = RESPONSE_BYTES[Ins(ins)]
        if raw[at + expected : at + expected + SW_BYTES] == OK:
            data, at = raw[at : at + expected], at + expected
        else:
            data = b""
        sw_raw = raw[at : at + SW_BYTES]
        if len(apdu) != length or len(sw_raw) != SW_BYTES:
            raise TranscriptError(f"a truncated exchange before byte {at}")
        at += SW_BYTES
        found.append(Exchange(apdu, data, int.from_bytes(sw_raw, "big")))
    return tuple(found)
