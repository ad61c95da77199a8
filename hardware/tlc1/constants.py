"""TLC1 (spec/CARD.md): the application id, files, instruction bytes and status words."""

from __future__ import annotations

from enum import IntEnum

AID = bytes.fromhex("F0544C4331")
CLA = 0x00
SERIAL_BYTES = 8
CHALLENGE_BYTES = 8
MAC_BYTES = 8
RECORD_BYTES = 29
COUNTER_BYTES = 3  # the transaction counter and the purse value are u24
PURSE_MAX_VND = 0xFFFFFF
CHANGES_PER_SESSION_MAX = 6
TRANSACTION_COUNTER_INITIAL = 1000
SESSION_KEY_LABEL = b"TLSK"
TERMINAL_MAC_LABEL = b"T"
CARD_MAC_LABEL = b"C"


class Sfi(IntEnum):
    ENVIRONMENT = 0x07
    EVENT_LOG = 0x08
    CONTRACTS = 0x09
    PURSE = 0x19


RECORDS_PER_FILE = {Sfi.ENVIRONMENT: 1, Sfi.EVENT_LOG: 3, Sfi.CONTRACTS: 4, Sfi.PURSE: 1}


class KeyLevel(IntEnum):
    PERSONALISATION = 1
    LOAD = 2
    DEBIT = 3


class Ins(IntEnum):
    """The opcode table: one instruction byte per command."""

    SELECT = 0xA4
    READ_RECORD = 0xB2
    OPEN_SECURE_SESSION = 0x8A
    UPDATE_RECORD = 0xDC
    APPEND_RECORD = 0xE2
    DECREASE = 0x30
    INCREASE = 0x32
    CLOSE_SECURE_SESSION = 0x8E  # also ABORT, with no data


class Sw(IntEnum):
    OK = 0x9000
    WRONG_LENGTH = 0x6700
    TOO_MANY_CHANGES = 0x6400
    COUNTER_EXHAUSTED = 0x6900
    INCOMPATIBLE_FILE = 0x6981
    SECURITY_NOT_SATISFIED = 0x6982
    CONDITIONS_NOT_SATISFIED = 0x6985
    INCORRECT_MAC = 0x6988
    FILE_NOT_FOUND = 0x6A82
    RECORD_NOT_FOUND = 0x6A83
    WRONG_PARAMETERS = 0x6B00
    UNKNOWN_INS = 0x6D00
    UNKNOWN_CLA = 0x6E00


# Which key levels may change each file (CARD.md, "Files").
LEVELS_ALLOWED = {
    (Sfi.ENVIRONMENT, Ins.UPDATE_RECORD): frozenset({KeyLevel.PERSONALISATION}),
    (Sfi.EVENT_LOG, Ins.APPEND_RECORD): frozenset(KeyLevel),
    (Sfi.CONTRACTS, Ins.UPDATE_RECORD): frozenset({KeyLevel.PERSONALISATION, KeyLevel.LOAD}),
    (Sfi.PURSE, Ins.DECREASE): frozenset({KeyLevel.DEBIT}),
    (Sfi.PURSE, Ins.INCREASE): frozenset({KeyLevel.LOAD}),
}
