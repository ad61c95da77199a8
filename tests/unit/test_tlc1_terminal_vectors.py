"""The terminal drives the vector trace exactly, and a failed session never looks like success.

A `ScriptedReader` loaded with spec/card-vectors.json plays the card: given the trace's terminal
challenges, the terminal must send exactly the trace's commands, or the reader raises.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from hardware.fake_reader import ScriptedReader, ScriptedResponse
from hardware.invariants import InvariantViolated
from hardware.reader import CardIOError
from hardware.sam import KeyLevelNotHeld, Sam, SamSession, SoftwareSam, parse_key_file
from hardware.tlc1 import crypto
from hardware.tlc1.commands import ConditionsNotSatisfied, IncorrectMac
from hardware.tlc1.constants import KeyLevel, Sfi
from hardware.tlc1.terminal import CardMacRejected, OpenedSession, Terminal, random_challenge
from tests.vectors import CARD_VECTORS_PATH

VECTORS: dict[str, Any] = json.loads(CARD_VECTORS_PATH.read_text())
HEX = bytes.fromhex
TRACE = [(HEX(step["command"]), HEX(step["response"])) for step in VECTORS["trace"]]
SERIAL = HEX(VECTORS["serial"])
OPEN_INS = 0x8A
TERMINAL_CHALLENGES = [command[5:13] for command, _ in TRACE if command[1] == OPEN_INS]
ENVIRONMENT = TRACE[2][0][5:]  # the record personalisation writes
EVENT = TRACE[11][0][5:]  # the bus boarding event
SELECT, OPEN_TAMPERED, DECREASE_TAMPERED, CLOSE_TAMPERED, READ_PURSE_AFTER = 0, 14, 15, 16, 17
OK = HEX("9000")
ABORT = HEX("008E0000")


def vector_sam() -> SoftwareSam:
    return SoftwareSam(parse_key_file(json.dumps(VECTORS["master_keys"]).encode()))


def terminal_for(
    script: Sequence[tuple[bytes, ScriptedResponse]],
    *,
    terminal_challenges: list[bytes] = TERMINAL_CHALLENGES,
    sam: Sam | None = None,
) -> tuple[Terminal, ScriptedReader]:
    """A terminal over a scripted card, already powered, drawing the given challenges."""
    reader = ScriptedReader("vector card", script)
    reader.power_on()
    source = iter(terminal_challenges)
    terminal = Terminal(reader, sam or vector_sam(), challenges=lambda: next(source))
    return terminal, reader


def boarding_session(
    script_after_open: Sequence[tuple[bytes, ScriptedResponse]],
) -> tuple[Terminal, OpenedSession, ScriptedReader]:
    """SELECT and the trace's bus-boarding OPEN (level 3, environment read), then the script."""
    terminal, reader = terminal_for(
        [TRACE[0], TRACE[8], *script_after_open], terminal_challenges=[TERMINAL_CHALLENGES[2]]
    )
    terminal.select()
    return terminal, terminal.open_session(KeyLevel.DEBIT, read=(Sfi.ENVIRONMENT, 1)), reader


class _ZeroKeySession:
    """MACs with an all-zero session key: how the vector's forger made its CLOSE."""

    def terminal_mac(self, transcript: bytes) -> bytes:
        return crypto.terminal_mac(bytes(crypto.KEY_BYTES), transcript)

    def card_mac_is_valid(self, transcript: bytes, card_mac: bytes) -> bool:
        return crypto.card_mac(bytes(crypto.KEY_BYTES), transcript) == card_mac


class ForgingSam:
    """The vector SAM until `forge` is set; then its sessions MAC with a zero session key.

    The trace's tampered CLOSE carries the terminal MAC of the right transcript under an
    all-zero session key (found by recomputing it), not under a wrong master key, so this
    double is the only way to make a terminal send that exact frame.
    """

    def __init__(self) -> None:
        self._genuine = vector_sam()
        self.forge = False

    def open_session(
        self,
        *,
        serial: bytes,
        level: KeyLevel,
        terminal_challenge: bytes,
        card_challenge: bytes,
        counter: int,
    ) -> SamSession:
        if self.forge:
            return _ZeroKeySession()
        return self._genuine.open_session(
            serial=serial,
            level=level,
            terminal_challenge=terminal_challenge,
            card_challenge=card_challenge,
            counter=counter,
        )


# --- the vectors --------------------------------------------------------------------------


def test_terminal_sends_exactly_the_vector_trace_and_the_card_macs_verify() -> None:
    sam = ForgingSam()
    terminal, reader = terminal_for(TRACE, sam=sam)

    assert terminal.select() == SERIAL

    personalise = terminal.open_session(KeyLevel.PERSONALISATION)
    personalise.update_record(Sfi.ENVIRONMENT, 1, ENVIRONMENT)
    assert personalise.close().card_mac == TRACE[3][1][:8]

    reload = terminal.open_session(KeyLevel.LOAD)
    assert reload.ratified is False  # nothing followed the personalisation CLOSE
    assert reload.increase(50000) == 50000
    assert reload.close().card_mac == TRACE[6][1][:8]
    assert terminal.ratify((Sfi.PURSE, 1))[:3] == (50000).to_bytes(3, "big")

    boarding = terminal.open_session(KeyLevel.DEBIT, read=(Sfi.ENVIRONMENT, 1))
    assert boarding.ratified is True
    assert boarding.record == ENVIRONMENT
    assert boarding.read_record(Sfi.EVENT_LOG, 1) == bytes(29)
    assert boarding.decrease(8000) == 42000
    boarding.append_record(Sfi.EVENT_LOG, EVENT)
    assert boarding.close().card_mac == TRACE[12][1][:8]
    assert terminal.ratify() == EVENT

    sam.forge = True
    tampered = terminal.open_session(KeyLevel.DEBIT)
    assert tampered.decrease(1000) == 41000
    with pytest.raises(IncorrectMac):
        tampered.close()
    assert not tampered.is_open
    purse = terminal.read_record(Sfi.PURSE, 1)
    assert int.from_bytes(purse[:3], "big") == VECTORS["final_purse"]

    assert reader.transmitted == [command for command, _ in TRACE]
    assert reader.unused == ()


def test_boarding_proof_carries_what_the_backend_needs() -> None:
    _, session, _ = boarding_session(TRACE[9:13])
    session.read_record(Sfi.EVENT_LOG, 1)
    session.decrease(8000)
    session.append_record(Sfi.EVENT_LOG, EVENT)
    proof = session.close()

    assert proof.serial == SERIAL
    assert proof.level == KeyLevel.DEBIT
    assert proof.terminal_challenge == TERMINAL_CHALLENGES[2]
    assert proof.card_challenge == TRACE[8][1][:8]
    assert proof.counter == 997
    assert proof.card_mac == TRACE[12][1][:8]
    # OPEN's data without its SW, then every later command and its whole response; not CLOSE.
    commands_and_responses = b"".join(command + response for command, response in TRACE[9:12])
    assert proof.transcript == TRACE[8][1][:-2] + commands_and_responses


def test_a_sam_with_a_wrong_key_gets_incorrect_mac_from_the_cards_6988() -> None:
    wrong_sam = SoftwareSam({KeyLevel.DEBIT: bytes(16)})
    open_response, (decrease, decreased) = TRACE[OPEN_TAMPERED][1], TRACE[DECREASE_TAMPERED]
    wrong_mac = wrong_sam.open_session(
        serial=SERIAL,
        level=KeyLevel.DEBIT,
        terminal_challenge=TERMINAL_CHALLENGES[3],
        card_challenge=open_response[:8],
        counter=int.from_bytes(open_response[8:11], "big"),
    ).terminal_mac(open_response[:-2] + decrease + decreased)
    close = HEX("008E000008") + wrong_mac + HEX("00")
    terminal, reader = terminal_for(
        [TRACE[SELECT], TRACE[OPEN_TAMPERED], TRACE[DECREASE_TAMPERED], (close, HEX("6988"))],
        terminal_challenges=[TERMINAL_CHALLENGES[3]],
        sam=wrong_sam,
    )
    terminal.select()
    session = terminal.open_session(KeyLevel.DEBIT)
    session.decrease(1000)

    with pytest.raises(IncorrectMac) as refused:
        session.close()

    assert refused.value.sw == 0x6988
    assert not session.is_open
    assert reader.unused == ()


# --- failures leave nothing that looks like success ---------------------------------------


def test_a_card_mac_that_does_not_verify_is_refused() -> None:
    forged_answer = bytes([TRACE[12][1][0] ^ 0x01]) + TRACE[12][1][1:]
    _, session, _ = boarding_session([*TRACE[9:12], (TRACE[12][0], forged_answer)])
    session.read_record(Sfi.EVENT_LOG, 1)
    session.decrease(8000)
    session.append_record(Sfi.EVENT_LOG, EVENT)

    with pytest.raises(CardMacRejected):
        session.close()
    assert not session.is_open


def test_a_refused_command_aborts_the_card_session_and_kills_ours() -> None:
    _, session, reader = boarding_session([(TRACE[10][0], HEX("6985")), (ABORT, OK)])

    with pytest.raises(ConditionsNotSatisfied):
        session.decrease(8000)

    assert reader.unused == ()  # the ABORT was sent
    assert not session.is_open
    with pytest.raises(InvariantViolated):
        session.close()


def test_a_refusal_is_reported_even_when_the_abort_after_it_fails() -> None:
    _, session, _ = boarding_session([(TRACE[10][0], HEX("6985")), (ABORT, CardIOError("torn"))])

    with pytest.raises(ConditionsNotSatisfied):
        session.decrease(8000)
    assert not session.is_open


def test_a_card_torn_mid_session_kills_the_session_without_an_abort() -> None:
    _, session, reader = boarding_session([(TRACE[10][0], CardIOError("torn"))])

    with pytest.raises(CardIOError):
        session.decrease(8000)

    # Nothing more was sent (the script has no ABORT): the card lost power, and its changes.
    assert reader.unused == ()
    assert not session.is_open


def test_a_card_torn_at_close_gives_no_proof() -> None:
    _, session, _ = boarding_session([*TRACE[9:12], (TRACE[12][0], CardIOError("torn"))])
    session.read_record(Sfi.EVENT_LOG, 1)
    session.decrease(8000)
    session.append_record(Sfi.EVENT_LOG, EVENT)

    with pytest.raises(CardIOError):
        session.close()
    assert not session.is_open


def test_a_card_torn_before_ratification_keeps_the_proof() -> None:
    terminal, _ = terminal_for(
        [*TRACE[:1], *TRACE[8:13], (TRACE[13][0], CardIOError("torn"))],
        terminal_challenges=[TERMINAL_CHALLENGES[2]],
    )
    terminal.select()
    session = terminal.open_session(KeyLevel.DEBIT, read=(Sfi.ENVIRONMENT, 1))
    session.read_record(Sfi.EVENT_LOG, 1)
    session.decrease(8000)
    session.append_record(Sfi.EVENT_LOG, EVENT)
    proof = session.close()

    with pytest.raises(CardIOError):
        terminal.ratify()
    assert proof.card_mac == TRACE[12][1][:8]


def test_a_sam_without_the_level_aborts_the_card_session_it_opened() -> None:
    terminal, reader = terminal_for(
        [TRACE[0], TRACE[8], (ABORT, OK)],
        terminal_challenges=[TERMINAL_CHALLENGES[2]],
        sam=SoftwareSam({KeyLevel.LOAD: bytes(16)}),
    )
    terminal.select()

    with pytest.raises(KeyLevelNotHeld):
        terminal.open_session(KeyLevel.DEBIT, read=(Sfi.ENVIRONMENT, 1))
    assert reader.unused == ()


def test_abort_drops_the_session() -> None:
    _, session, reader = boarding_session([TRACE[10], (ABORT, OK)])
    session.decrease(8000)

    session.abort()

    assert reader.unused == ()
    assert not session.is_open
    with pytest.raises(InvariantViolated):
        session.append_record(Sfi.EVENT_LOG, EVENT)


# --- what the terminal must never do ------------------------------------------------------


def test_a_change_the_session_level_does_not_allow_is_a_bug_caught_before_sending() -> None:
    terminal, reader = terminal_for(
        [TRACE[0], TRACE[4]], terminal_challenges=[TERMINAL_CHALLENGES[1]]
    )
    terminal.select()
    reload = terminal.open_session(KeyLevel.LOAD)

    with pytest.raises(InvariantViolated):
        reload.decrease(8000)
    assert reader.transmitted == [TRACE[0][0], TRACE[4][0]]


def test_opening_a_session_before_select_is_a_bug() -> None:
    terminal, reader = terminal_for([])
    with pytest.raises(InvariantViolated):
        terminal.open_session(KeyLevel.DEBIT)
    assert reader.transmitted == []


def test_only_one_session_at_a_time_and_no_plain_reads_inside_it() -> None:
    terminal, session, reader = boarding_session([])
    assert session.is_open

    with pytest.raises(InvariantViolated):
        terminal.open_session(KeyLevel.DEBIT)
    with pytest.raises(InvariantViolated):
        terminal.read_record(Sfi.PURSE, 1)
    with pytest.raises(InvariantViolated):
        terminal.select()
    assert reader.transmitted == [TRACE[0][0], TRACE[8][0]]


def test_a_challenge_source_giving_7_bytes_is_a_bug() -> None:
    terminal, reader = terminal_for([TRACE[0]], terminal_challenges=[bytes(7)])
    terminal.select()
    with pytest.raises(InvariantViolated):
        terminal.open_session(KeyLevel.DEBIT)
    assert reader.transmitted == [TRACE[0][0]]


def test_the_default_challenges_are_fresh_random_bytes() -> None:
    first, second = random_challenge(), random_challenge()
    assert len(first) == len(second) == 8
    assert first != second
