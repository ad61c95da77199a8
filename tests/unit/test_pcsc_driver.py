"""The PC/SC driver over a pretend pyscard, and the fake readers that share its port.

`FakeScard` stands in for `smartcard.scard` (the driver's only pyscard module): it keeps readers
and cards, answers HRESULTs like pcsc-lite, and fails on demand. The constants are the real
ones, reached through the driver so that no test imports pyscard itself.
"""

# FakeScard mirrors pyscard's PC/SC functions: their names (N802) and every argument (ARG002).
# ruff: noqa: N802, ARG002

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from hardware.fake_reader import CardInReader, ScriptedReader, UnscriptedApdu
from hardware.invariants import InvariantViolated
from hardware.reader import CancellableWaits, CardIOError, CardReader, ReaderIOError
from tests.services import require_pyscard

require_pyscard()

from hardware import pcsc  # noqa: E402  (needs pyscard, checked just above)

# The real pyscard module, reached through the driver: only hardware/pcsc.py imports pyscard.
REAL: Any = vars(pcsc)["scard"]
ACR = "ACS ACR122U PICC Interface 00 00"
UTRUST = "Identiv uTrust 3700 F CL Reader [uTrust 3700 F CL Reader] (55041831201154) 00 00"
ATR = bytes.fromhex("3B8180018080")
SELECT = bytes.fromhex("00A4040005F0544C433100")
FCI = bytes.fromhex("6F118405F0544C4331C70800112233445566779000")
BLOCKED_WAIT_S = 5.0


class FakeScardError(Exception):
    """Stands in for pyscard's own `scard.error`."""


class FakeScard:
    """pyscard's `smartcard.scard` over a pretend pcscd."""

    error = FakeScardError

    def __init__(self, readers: dict[str, bool]) -> None:
        self.card_present = dict(readers)  # reader name -> a card in its field
        self.failures: dict[str, int] = {}  # pyscard function -> HRESULT it returns
        self.exceptions: dict[str, Exception] = {}  # pyscard function -> what it raises
        self.arrivals: list[tuple[str, bool]] = []  # what happens while a wait blocks
        self.reader_state_flags = 0  # extra SCARD_STATE_* bits to report
        self.protocol = REAL.SCARD_PROTOCOL_T1
        self.responses: list[bytes] = []
        self.transmitted: list[bytes] = []
        self.open_contexts: set[int] = set()
        self.contexts_used_for_waits: list[int] = []
        self.connections: list[tuple[int, str, int, int]] = []
        self.dispositions: list[int] = []
        self.cancelled: set[int] = set()
        self.blocking = threading.Event()  # set while a wait blocks in block_until_cancel
        self.block_until_cancel = False
        self._next_handle = 100

    def __getattr__(self, name: str) -> Any:
        return getattr(REAL, name)  # the SCARD_* constants

    def _fail(self, function: str) -> int | None:
        if function in self.exceptions:
            raise self.exceptions[function]
        return self.failures.get(function)

    def _handle(self) -> int:
        self._next_handle += 1
        return self._next_handle

    def SCardEstablishContext(self, scope: int) -> tuple[int, int]:
        failure = self._fail("SCardEstablishContext")
        if failure is not None:
            return failure, 0
        context = self._handle()
        self.open_contexts.add(context)
        return REAL.SCARD_S_SUCCESS, context

    def SCardReleaseContext(self, context: int) -> int:
        self.open_contexts.discard(context)
        return self._fail("SCardReleaseContext") or REAL.SCARD_S_SUCCESS

    def SCardListReaders(self, context: int, groups: list[str]) -> tuple[int, list[str]]:
        failure = self._fail("SCardListReaders")
        if failure is not None:
            return failure, []
        if not self.card_present:
            return REAL.SCARD_E_NO_READERS_AVAILABLE, []
        return REAL.SCARD_S_SUCCESS, list(self.card_present)

    def SCardGetStatusChange(
        self, context: int, timeout_ms: int, states: list[tuple[str, int]]
    ) -> tuple[int, list[tuple[str, int, list[int]]]]:
        self.contexts_used_for_waits.append(context)
        failure = self._fail("SCardGetStatusChange")
        if failure is not None:
            return failure, []
        ((name, known),) = states
        if name not in self.card_present:
            return REAL.SCARD_E_UNKNOWN_READER, []
        if known != REAL.SCARD_STATE_UNAWARE and self._state(name) == known:
            if self.block_until_cancel:
                self.blocking.set()
                while context not in self.cancelled:
                    threading.Event().wait(0.001)
                return REAL.SCARD_E_CANCELLED, []
            if not self.arrivals:
                return REAL.SCARD_E_TIMEOUT, []
            arriving, present = self.arrivals.pop(0)
            self.card_present[arriving] = present
        return REAL.SCARD_S_SUCCESS, [(name, self._state(name) | REAL.SCARD_STATE_CHANGED, [])]

    def _state(self, name: str) -> int:
        card = REAL.SCARD_STATE_PRESENT if self.card_present[name] else REAL.SCARD_STATE_EMPTY
        return int(card | self.reader_state_flags)

    def SCardCancel(self, context: int) -> int:
        self.cancelled.add(context)
        return self._fail("SCardCancel") or REAL.SCARD_S_SUCCESS

    def SCardConnect(
        self, context: int, name: str, share: int, protocols: int
    ) -> tuple[int, int, int]:
        failure = self._fail("SCardConnect")
        if failure is not None:
            return failure, 0, 0
        if not self.card_present.get(name, False):
            return REAL.SCARD_E_NO_SMARTCARD, 0, 0
        self.connections.append((context, name, share, protocols))
        return REAL.SCARD_S_SUCCESS, self._handle(), self.protocol

    def SCardStatus(self, card: int) -> tuple[int, str, int, int, list[int]]:
        failure = self._fail("SCardStatus")
        if failure is not None:
            return failure, "", 0, 0, []
        return REAL.SCARD_S_SUCCESS, ACR, REAL.SCARD_STATE_PRESENT, self.protocol, list(ATR)

    def SCardTransmit(self, card: int, pci: int, apdu: list[int]) -> tuple[int, list[int]]:
        failure = self._fail("SCardTransmit")
        if failure is not None:
            return failure, []
        self.transmitted.append(bytes(apdu))
        return REAL.SCARD_S_SUCCESS, list(self.responses.pop(0))

    def SCardDisconnect(self, card: int, disposition: int) -> int:
        self.dispositions.append(disposition)
        return self._fail("SCardDisconnect") or REAL.SCARD_S_SUCCESS


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeScard:
    scard = FakeScard({ACR: True, UTRUST: False})
    monkeypatch.setattr(pcsc, "scard", scard)
    return scard


def powered(fake: FakeScard, *responses: bytes) -> pcsc.PcscReader:
    fake.responses.extend(responses)
    reader = pcsc.PcscReader(ACR)
    reader.power_on()
    return reader


# --- listing readers ----------------------------------------------------------------------


def test_lists_every_reader_without_a_filter(fake: FakeScard) -> None:
    assert pcsc.list_readers() == [ACR, UTRUST]


@pytest.mark.parametrize(
    ("name_filter", "expected"),
    [
        pytest.param("acr122", [ACR], id="case-insensitive"),
        pytest.param("[utrust 3700 f cl", [UTRUST], id="brackets are plain text"),
        pytest.param("00 00", [ACR, UTRUST], id="several match"),
        pytest.param("ACR.*", [], id="not a regex"),
        pytest.param("omnikey", [], id="none match"),
    ],
)
def test_filters_readers_by_substring(
    fake: FakeScard, name_filter: str, expected: list[str]
) -> None:
    assert pcsc.list_readers(name_filter) == expected


def test_no_readers_is_an_empty_list_not_an_error(fake: FakeScard) -> None:
    fake.card_present.clear()
    assert pcsc.list_readers() == []


def test_listing_without_pcscd_is_a_reader_error(fake: FakeScard) -> None:
    fake.failures["SCardEstablishContext"] = REAL.SCARD_E_NO_SERVICE
    with pytest.raises(ReaderIOError, match="pcscd"):
        pcsc.list_readers()


def test_listing_releases_its_context_even_when_it_fails(fake: FakeScard) -> None:
    fake.failures["SCardListReaders"] = REAL.SCARD_F_INTERNAL_ERROR
    with pytest.raises(ReaderIOError, match="SCARD_F_INTERNAL_ERROR"):
        pcsc.list_readers()
    assert fake.open_contexts == set()


# --- power and transmit -------------------------------------------------------------------


def test_power_on_connects_shared_with_t0_or_t1_and_returns_the_atr(fake: FakeScard) -> None:
    reader = pcsc.PcscReader(ACR)
    assert reader.power_on() == ATR
    ((_, name, share, protocols),) = fake.connections
    assert (name, share) == (ACR, REAL.SCARD_SHARE_SHARED)
    assert protocols == REAL.SCARD_PROTOCOL_T0 | REAL.SCARD_PROTOCOL_T1


def test_transmit_sends_raw_bytes_and_returns_data_and_status(fake: FakeScard) -> None:
    reader = powered(fake, FCI)
    assert reader.transmit(SELECT) == FCI
    assert fake.transmitted == [SELECT]


def test_power_off_unpowers_the_card_and_releases_the_context(fake: FakeScard) -> None:
    reader = powered(fake)
    reader.power_off()
    assert fake.dispositions == [REAL.SCARD_UNPOWER_CARD]
    assert fake.open_contexts == set()


def test_power_off_twice_does_nothing_the_second_time(fake: FakeScard) -> None:
    reader = powered(fake)
    reader.power_off()
    reader.power_off()
    assert fake.dispositions == [REAL.SCARD_UNPOWER_CARD]


def test_power_off_after_the_card_left_is_quiet(fake: FakeScard) -> None:
    reader = powered(fake)
    fake.failures["SCardDisconnect"] = REAL.SCARD_W_REMOVED_CARD
    reader.power_off()
    assert fake.open_contexts == set()


def test_power_off_reports_a_dead_reader_but_still_releases(fake: FakeScard) -> None:
    reader = powered(fake)
    fake.failures["SCardDisconnect"] = REAL.SCARD_E_READER_UNAVAILABLE
    with pytest.raises(ReaderIOError):
        reader.power_off()
    assert fake.open_contexts == set()


def test_power_on_without_a_card_is_a_card_error_and_leaks_no_context(fake: FakeScard) -> None:
    with pytest.raises(CardIOError):
        pcsc.PcscReader(UTRUST).power_on()
    assert fake.open_contexts == set()


def test_power_on_failing_after_connect_disconnects_again(fake: FakeScard) -> None:
    fake.failures["SCardStatus"] = REAL.SCARD_W_REMOVED_CARD
    with pytest.raises(CardIOError):
        pcsc.PcscReader(ACR).power_on()
    assert fake.dispositions == [REAL.SCARD_UNPOWER_CARD]
    assert fake.open_contexts == set()


def test_power_on_refuses_a_protocol_other_than_t0_and_t1(fake: FakeScard) -> None:
    fake.protocol = REAL.SCARD_PROTOCOL_RAW
    with pytest.raises(CardIOError):
        pcsc.PcscReader(ACR).power_on()
    assert fake.open_contexts == set()


@pytest.mark.parametrize(
    ("hresult", "error"),
    [
        pytest.param("SCARD_W_REMOVED_CARD", CardIOError, id="removed"),
        pytest.param("SCARD_E_NOT_TRANSACTED", CardIOError, id="torn mid-APDU"),
        pytest.param("SCARD_W_UNRESPONSIVE_CARD", CardIOError, id="unresponsive"),
        pytest.param("SCARD_W_RESET_CARD", CardIOError, id="reset by another app"),
        pytest.param("SCARD_E_NO_SMARTCARD", CardIOError, id="no card"),
        pytest.param("SCARD_E_READER_UNAVAILABLE", ReaderIOError, id="reader unplugged"),
        pytest.param("SCARD_E_NO_SERVICE", ReaderIOError, id="pcscd gone"),
        pytest.param("SCARD_E_SHARING_VIOLATION", ReaderIOError, id="reader held"),
        pytest.param("SCARD_E_INVALID_HANDLE", ReaderIOError, id="stale handle"),
        pytest.param("SCARD_F_COMM_ERROR", ReaderIOError, id="internal comm error"),
    ],
)
def test_transmit_maps_each_pcsc_error_to_card_or_reader(
    fake: FakeScard, hresult: str, error: type[Exception]
) -> None:
    reader = powered(fake)
    fake.failures["SCardTransmit"] = getattr(REAL, hresult)
    with pytest.raises(error, match=hresult):
        reader.transmit(SELECT)


def test_an_unknown_pcsc_code_is_a_reader_error(fake: FakeScard) -> None:
    reader = powered(fake)
    fake.failures["SCardTransmit"] = 0x801000FE
    with pytest.raises(ReaderIOError, match="0x801000FE"):
        reader.transmit(SELECT)


def test_a_signed_hresult_maps_like_the_unsigned_one(fake: FakeScard) -> None:
    reader = powered(fake)
    fake.failures["SCardTransmit"] = REAL.SCARD_W_REMOVED_CARD - (1 << 32)
    with pytest.raises(CardIOError):
        reader.transmit(SELECT)


@pytest.mark.parametrize("response", ["", "90"], ids=["empty", "one byte"])
def test_a_response_without_a_status_word_is_a_card_error(fake: FakeScard, response: str) -> None:
    reader = powered(fake, bytes.fromhex(response))
    with pytest.raises(CardIOError):
        reader.transmit(SELECT)


def test_61xx_answers_are_collected_with_get_response(fake: FakeScard) -> None:
    # 19 data bytes handed over in two GET RESPONSE rounds, as a T=0 card does.
    reader = powered(fake, bytes.fromhex("6113"), FCI[:10] + bytes.fromhex("6109"), FCI[10:])
    assert reader.transmit(SELECT) == FCI
    assert fake.transmitted == [SELECT, bytes.fromhex("00C0000013"), bytes.fromhex("00C0000009")]


def test_endless_61xx_answers_are_a_card_error(fake: FakeScard) -> None:
    reader = powered(fake)
    fake.responses = [bytes.fromhex("6101")] * (pcsc.GET_RESPONSE_ROUNDS_MAX + 1)
    with pytest.raises(CardIOError):
        reader.transmit(SELECT)


def test_transmitting_before_power_on_is_a_bug(fake: FakeScard) -> None:
    with pytest.raises(InvariantViolated):
        pcsc.PcscReader(ACR).transmit(SELECT)


@pytest.mark.parametrize("length", [3, pcsc.APDU_BYTES_MAX + 1])
def test_an_apdu_of_impossible_length_is_a_bug(fake: FakeScard, length: int) -> None:
    with pytest.raises(InvariantViolated):
        powered(fake).transmit(bytes(length))


# --- presence and waits -------------------------------------------------------------------


def test_card_presence_reads_the_reader_state(fake: FakeScard) -> None:
    assert pcsc.PcscReader(ACR).is_card_present()
    assert not pcsc.PcscReader(UTRUST).is_card_present()


def test_wait_for_card_returns_at_once_when_one_is_there(fake: FakeScard) -> None:
    assert pcsc.PcscReader(ACR).wait_for_card(timeout_s=1.0)


def test_wait_for_card_returns_when_one_arrives(fake: FakeScard) -> None:
    fake.arrivals = [(UTRUST, True)]
    assert pcsc.PcscReader(UTRUST).wait_for_card(timeout_s=1.0)


def test_wait_for_card_times_out_false(fake: FakeScard) -> None:
    assert not pcsc.PcscReader(UTRUST).wait_for_card(timeout_s=0.5)


def test_wait_for_removal_returns_when_the_card_leaves(fake: FakeScard) -> None:
    fake.arrivals = [(ACR, False)]
    assert pcsc.PcscReader(ACR).wait_for_removal(timeout_s=1.0)


def test_wait_for_removal_times_out_false_while_the_card_stays(fake: FakeScard) -> None:
    assert not pcsc.PcscReader(ACR).wait_for_removal(timeout_s=0.5)


def test_waiting_on_an_unknown_reader_is_a_reader_error(fake: FakeScard) -> None:
    with pytest.raises(ReaderIOError, match="SCARD_E_UNKNOWN_READER"):
        pcsc.PcscReader("no such reader").wait_for_card(timeout_s=0.1)
    assert fake.open_contexts == set()


def test_an_unavailable_reader_is_a_reader_error(fake: FakeScard) -> None:
    fake.reader_state_flags = REAL.SCARD_STATE_UNAVAILABLE
    with pytest.raises(ReaderIOError, match="unavailable"):
        pcsc.PcscReader(ACR).is_card_present()


@pytest.mark.parametrize("timeout_s", [-0.1, pcsc.WAIT_TIMEOUT_MAX_S + 1])
def test_a_wait_without_a_sane_timeout_is_a_bug(fake: FakeScard, timeout_s: float) -> None:
    with pytest.raises(InvariantViolated):
        pcsc.PcscReader(ACR).wait_for_card(timeout_s)


def test_each_wait_has_its_own_context_never_the_transactions(fake: FakeScard) -> None:
    reader = powered(fake)
    (transaction_context,) = fake.open_contexts
    reader.wait_for_removal(timeout_s=0.1)
    reader.wait_for_removal(timeout_s=0.1)
    used = set(fake.contexts_used_for_waits)
    assert len(used) == 2
    assert transaction_context not in used
    assert fake.open_contexts == {transaction_context}


def test_cancel_waits_ends_a_wait_blocked_in_another_thread(fake: FakeScard) -> None:
    reader = pcsc.PcscReader(UTRUST)
    fake.block_until_cancel = True
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(reader.wait_for_card(BLOCKED_WAIT_S)))
    waiter.start()
    assert fake.blocking.wait(BLOCKED_WAIT_S)

    reader.cancel_waits()
    waiter.join(BLOCKED_WAIT_S)

    assert results == [False]
    assert fake.open_contexts == set()


# --- no pyscard exception escapes ---------------------------------------------------------


# Each public operation with each pyscard call it makes.
UNPOWERED_CALLS = [
    pytest.param("SCardEstablishContext", pcsc.list_readers, id="list: context"),
    pytest.param("SCardListReaders", pcsc.list_readers, id="list"),
    pytest.param(
        "SCardEstablishContext", pcsc.PcscReader(ACR).is_card_present, id="presence: context"
    ),
    pytest.param("SCardGetStatusChange", pcsc.PcscReader(ACR).is_card_present, id="presence"),
    pytest.param(
        "SCardGetStatusChange", lambda: pcsc.PcscReader(UTRUST).wait_for_card(0.1), id="wait"
    ),
    pytest.param(
        "SCardGetStatusChange", lambda: pcsc.PcscReader(ACR).wait_for_removal(0.1), id="removal"
    ),
    pytest.param("SCardEstablishContext", pcsc.PcscReader(ACR).power_on, id="power on: context"),
    pytest.param("SCardConnect", pcsc.PcscReader(ACR).power_on, id="power on"),
    pytest.param("SCardStatus", pcsc.PcscReader(ACR).power_on, id="power on: ATR"),
]


@pytest.mark.parametrize(("call", "operation"), UNPOWERED_CALLS)
def test_a_pyscard_exception_becomes_a_reader_error(
    fake: FakeScard, call: str, operation: Callable[[], object]
) -> None:
    fake.exceptions[call] = FakeScardError("SWIG says no")
    with pytest.raises(ReaderIOError) as failed:
        operation()
    assert isinstance(failed.value.__cause__, FakeScardError)
    assert fake.open_contexts == set()


def test_a_pyscard_exception_in_transmit_becomes_a_reader_error(fake: FakeScard) -> None:
    reader = powered(fake)
    fake.exceptions["SCardTransmit"] = FakeScardError("SWIG says no")
    with pytest.raises(ReaderIOError):
        reader.transmit(SELECT)


def test_a_pyscard_exception_in_power_off_becomes_a_reader_error(fake: FakeScard) -> None:
    reader = powered(fake)
    fake.exceptions["SCardDisconnect"] = FakeScardError("SWIG says no")
    with pytest.raises(ReaderIOError):
        reader.power_off()
    assert fake.open_contexts == set()


def test_a_pyscard_exception_while_releasing_is_swallowed(fake: FakeScard) -> None:
    fake.exceptions["SCardReleaseContext"] = FakeScardError("SWIG says no")
    assert pcsc.list_readers() == [ACR, UTRUST]


# --- the fakes keep the same port ---------------------------------------------------------


def test_every_reader_implements_the_port() -> None:
    readers: list[object] = [
        pcsc.PcscReader(ACR),
        ScriptedReader("scripted", []),
        CardInReader(_EchoCard()),
    ]
    assert all(isinstance(reader, CardReader) for reader in readers)
    assert isinstance(readers[0], CancellableWaits)
    assert not isinstance(readers[1], CancellableWaits)


def test_scripted_reader_answers_in_order_and_records_what_it_got() -> None:
    reader = ScriptedReader("scripted", [(SELECT, FCI), (b"\x00\xb2\x01\xcc\x00", b"\x90\x00")])
    reader.power_on()
    assert reader.transmit(SELECT) == FCI
    assert reader.transmitted == [SELECT]
    assert len(reader.unused) == 1


def test_scripted_reader_refuses_an_apdu_out_of_order() -> None:
    reader = ScriptedReader("scripted", [(SELECT, FCI)])
    reader.power_on()
    with pytest.raises(UnscriptedApdu, match="expected 00A4"):
        reader.transmit(bytes.fromhex("00B201CC00"))


def test_scripted_reader_refuses_an_apdu_after_the_script() -> None:
    reader = ScriptedReader("scripted", [])
    reader.power_on()
    with pytest.raises(UnscriptedApdu, match="after the script ended"):
        reader.transmit(SELECT)


def test_scripted_tear_raises_and_empties_the_field() -> None:
    reader = ScriptedReader("scripted", [(SELECT, CardIOError("torn"))])
    reader.power_on()
    with pytest.raises(CardIOError):
        reader.transmit(SELECT)
    assert not reader.is_card_present()
    assert reader.wait_for_removal(0)


def test_scripted_reader_without_a_card_cannot_power_on() -> None:
    reader = ScriptedReader("scripted", [], card_present=False)
    assert not reader.wait_for_card(0)
    with pytest.raises(CardIOError):
        reader.power_on()


class CardTorn(Exception):
    """The emulator's kind of exception for a card leaving the field."""


class _EchoCard:
    """A card answering each APDU with its own header and 9000, or as told."""

    def __init__(self) -> None:
        self.powered = False
        self.tear_next = False
        self.answer: bytes | None = None

    def power_on(self) -> bytes:
        self.powered = True
        return ATR

    def power_off(self) -> None:
        self.powered = False

    def transmit(self, apdu: bytes) -> bytes:
        if self.tear_next:
            raise CardTorn
        return self.answer if self.answer is not None else apdu[:4] + b"\x90\x00"


def test_card_in_reader_passes_apdus_to_the_card() -> None:
    reader = CardInReader(_EchoCard(), "emulator", lost_card_errors=(CardTorn,))
    assert reader.power_on() == ATR
    assert reader.transmit(SELECT) == SELECT[:4] + b"\x90\x00"


def test_card_in_reader_maps_the_cards_tear_to_card_io_error() -> None:
    card = _EchoCard()
    reader = CardInReader(card, "emulator", lost_card_errors=(CardTorn,))
    reader.power_on()
    card.tear_next = True
    with pytest.raises(CardIOError) as torn:
        reader.transmit(SELECT)
    assert isinstance(torn.value.__cause__, CardTorn)
    assert not reader.is_card_present()


def test_card_in_reader_lets_an_unlisted_card_exception_through_as_a_bug() -> None:
    card = _EchoCard()
    reader = CardInReader(card, "emulator")
    reader.power_on()
    card.tear_next = True
    with pytest.raises(CardTorn):
        reader.transmit(SELECT)


def test_card_in_reader_refuses_an_answer_without_status_word() -> None:
    card = _EchoCard()
    reader = CardInReader(card)
    reader.power_on()
    card.answer = b"\x90"
    with pytest.raises(CardIOError):
        reader.transmit(SELECT)


def test_removing_the_card_cuts_its_power() -> None:
    card = _EchoCard()
    reader = CardInReader(card)
    reader.power_on()
    reader.remove_card()
    assert not card.powered
    assert not reader.wait_for_card(0)
    reader.insert_card()
    assert reader.wait_for_card(0)
