"""The PC/SC driver: `CardReader` over pyscard. The only module that imports `smartcard`.

It uses pyscard's thin `smartcard.scard` layer (one call per PC/SC function, each returning an
HRESULT) rather than its object layer: the contexts, timeouts and dispositions are then ours to
choose, and every failure arrives as one code mapped by one table below. pyscard's values are
untyped; they are converted to `int`/`bytes`/`str` at the call site and never leave this module.

Contexts. PC/SC contexts must not be shared between threads that block in them (Keyple's PC/SC
plugin hit `SCARD_E_SHARING_VIOLATION` that way), so every wait and presence check establishes
its own context and releases it before returning: whichever thread monitors has a context of its
own. The transaction (`power_on` to `power_off`) holds one more context for its card handle.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from smartcard import scard

from hardware.invariants import require
from hardware.reader import SW_BYTES, CardIOError, ReaderError, ReaderIOError

APDU_BYTES_MIN = 4  # CLA INS P1 P2
APDU_BYTES_MAX = 261  # a short APDU: header, Lc, 255 data bytes, Le
WAIT_TIMEOUT_MAX_S = 3600.0  # longer waits loop in the caller; the PC/SC timeout is a DWORD of ms
GET_RESPONSE_ROUNDS_MAX = 8  # 8 rounds of 256 bytes: far more than any TLC1 answer
MS_PER_S = 1000
SW1_MORE_DATA = 0x61  # "61 XX": XX more bytes wait for a GET RESPONSE
GET_RESPONSE_HEADER = bytes([0x00, 0xC0, 0x00, 0x00])
HRESULT_MASK = 0xFFFFFFFF  # pyscard returns HRESULTs signed on some platforms, unsigned on others


def _code(hresult: Any) -> int:
    return int(hresult) & HRESULT_MASK


SUCCESS = _code(scard.SCARD_S_SUCCESS)
TIMEOUT = _code(scard.SCARD_E_TIMEOUT)
CANCELLED = _code(scard.SCARD_E_CANCELLED)
NO_READERS = _code(scard.SCARD_E_NO_READERS_AVAILABLE)

# The codes that mean the card, not the reader, failed: it left the field, stopped answering, or
# is not a card we can talk to. Every other code is the reader's or the service's.
_CARD_LOST = frozenset(
    _code(getattr(scard, name))
    for name in (
        "SCARD_W_REMOVED_CARD",
        "SCARD_E_NO_SMARTCARD",
        "SCARD_W_UNRESPONSIVE_CARD",
        "SCARD_W_UNPOWERED_CARD",
        # Another application reset the card: our session on it is gone as surely as if torn.
        "SCARD_W_RESET_CARD",
        # pcsc-lite's answer when a contactless card leaves the field in the middle of an APDU.
        "SCARD_E_NOT_TRANSACTED",
        "SCARD_E_COMM_DATA_LOST",
        "SCARD_E_PROTO_MISMATCH",
        "SCARD_W_UNSUPPORTED_CARD",
        "SCARD_E_CARD_UNSUPPORTED",
        "SCARD_E_INVALID_ATR",
    )
)
_NAMES = {
    _code(getattr(scard, name)): name
    for name in sorted(dir(scard))
    if name.startswith(("SCARD_E_", "SCARD_W_", "SCARD_F_", "SCARD_P_"))
}
_SEND_PCI = {
    _code(scard.SCARD_PROTOCOL_T0): int(scard.SCARD_PCI_T0),
    _code(scard.SCARD_PROTOCOL_T1): int(scard.SCARD_PCI_T1),
}


def list_readers(name_filter: str | None = None) -> list[str]:
    """The readers PC/SC knows, optionally those whose name contains `name_filter`.

    The filter is a case-insensitive substring, not a regex: reader names are full of brackets
    and parentheses ("uTrust 3700 F [CL Reader] (5504...) 00 00").
    """
    with _context("PC/SC") as context:
        hresult, names = _call("PC/SC", "listing readers", scard.SCardListReaders, context, [])
    if _code(hresult) == NO_READERS:
        return []
    _check(hresult, "PC/SC", "listing readers")
    readers = [str(name) for name in names]
    if name_filter is None:
        return readers
    wanted = name_filter.casefold()
    return [name for name in readers if wanted in name.casefold()]


class PcscReader:
    """One PC/SC reader, by its exact name (see `list_readers`). Also `CancellableWaits`."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._context: int | None = None
        self._card: int | None = None
        self._send_pci: int | None = None
        self._waits: set[int] = set()
        self._waits_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PcscReader({self._name!r}, powered={self._card is not None})"

    @property
    def name(self) -> str:
        return self._name

    def is_card_present(self) -> bool:
        with self._wait_context() as context:
            state = self._state(context, scard.SCARD_STATE_UNAWARE, timeout_ms=0)
        return state is not None and _has_card(state)

    def wait_for_card(self, timeout_s: float) -> bool:
        return self._wait(card_wanted=True, timeout_s=timeout_s)

    def wait_for_removal(self, timeout_s: float) -> bool:
        return self._wait(card_wanted=False, timeout_s=timeout_s)

    def cancel_waits(self) -> None:
        """Waits that start after this call are not affected: stop calling them first."""
        # Under the lock, so no context is released (and its handle reused) while we cancel it.
        with self._waits_lock:
            for context in self._waits:
                hresult = _call(self._name, "cancelling a wait", scard.SCardCancel, context)
                _check(hresult, self._name, "cancelling a wait")

    def power_on(self) -> bytes:
        require(self._card is None, "power the card off before powering it on again")
        context = _establish(self._name)
        try:
            hresult, card, protocol = _call(
                self._name,
                "connecting",
                scard.SCardConnect,
                context,
                self._name,
                # Shared, so pcsc_scan or a diagnostics tool may watch the reader; the card's
                # secure session, not an exclusive lock, is what keeps a transaction whole.
                scard.SCARD_SHARE_SHARED,
                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
            )
            _check(hresult, self._name, "connecting")
        except ReaderError:
            _release(context)
            raise
        try:
            send_pci = _SEND_PCI.get(_code(protocol))
            if send_pci is None:
                raise CardIOError(f"{self._name}: the card speaks neither T=0 nor T=1")
            hresult, _reader, _state, _protocol, atr = _call(
                self._name, "reading the ATR", scard.SCardStatus, card
            )
            _check(hresult, self._name, "reading the ATR")
        except ReaderError:
            _disconnect(card, self._name)
            _release(context)
            raise
        self._context, self._card, self._send_pci = context, int(card), send_pci
        return bytes(atr)

    def transmit(self, apdu: bytes) -> bytes:
        require(self._card is not None, "power the card on before transmitting")
        require(APDU_BYTES_MIN <= len(apdu) <= APDU_BYTES_MAX, "an APDU has 4 to 261 bytes")
        response = self._transmit_once(apdu)
        # CARD.md never answers 61XX, but over T=0 (a contact test bench) the reader may.
        data = b""
        for _ in range(GET_RESPONSE_ROUNDS_MAX):
            if response[-SW_BYTES] != SW1_MORE_DATA:
                return data + response
            data += response[:-SW_BYTES]
            response = self._transmit_once(GET_RESPONSE_HEADER + response[-1:])
        raise CardIOError(f"{self._name}: more than {GET_RESPONSE_ROUNDS_MAX} GET RESPONSE")

    def power_off(self) -> None:
        card, context = self._card, self._context
        self._card, self._context, self._send_pci = None, None, None
        if card is None or context is None:
            return
        try:
            _disconnect(card, self._name)
        finally:
            _release(context)

    def _transmit_once(self, apdu: bytes) -> bytes:
        hresult, response = _call(
            self._name, "transmitting", scard.SCardTransmit, self._card, self._send_pci, list(apdu)
        )
        _check(hresult, self._name, "transmitting")
        answer = bytes(response)
        if len(answer) < SW_BYTES:
            raise CardIOError(f"{self._name}: {len(answer)}-byte response has no status word")
        return answer

    def _wait(self, *, card_wanted: bool, timeout_s: float) -> bool:
        require(0 <= timeout_s <= WAIT_TIMEOUT_MAX_S, "a wait takes 0 s to 1 h")
        deadline = time.monotonic() + timeout_s
        with self._wait_context() as context:
            state = self._state(context, scard.SCARD_STATE_UNAWARE, timeout_ms=0)
            # Bounded by the deadline: each round blocks until a change or the time left ends.
            while state is not None and _has_card(state) != card_wanted:
                left_ms = int((deadline - time.monotonic()) * MS_PER_S)
                if left_ms <= 0:
                    return False
                state = self._state(context, state, timeout_ms=left_ms)
            return state is not None

    def _state(self, context: int, known: int, *, timeout_ms: int) -> int | None:
        """The reader's state once it differs from `known`; None on timeout or cancel."""
        # pcsc-lite wants back the state it reported, less the "changed" bit.
        reader_states = [(self._name, known & ~scard.SCARD_STATE_CHANGED)]
        hresult, states = _call(
            self._name,
            "watching for cards",
            scard.SCardGetStatusChange,
            context,
            timeout_ms,
            reader_states,
        )
        if _code(hresult) in (TIMEOUT, CANCELLED):
            return None
        _check(hresult, self._name, "watching for cards")
        _name, event_state, _atr = states[0]
        state = int(event_state)
        if state & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
            raise ReaderIOError(f"{self._name}: the reader is gone or unavailable")
        return state

    @contextmanager
    def _wait_context(self) -> Iterator[int]:
        context = _establish(self._name)
        with self._waits_lock:
            self._waits.add(context)
        try:
            yield context
        finally:
            with self._waits_lock:
                self._waits.discard(context)
                _release(context)


def _has_card(state: int) -> bool:
    # A mute card (present, no ATR) counts: power_on then fails with CardIOError, which tells
    # the rider to tap again, instead of the reader silently ignoring the card.
    return bool(state & scard.SCARD_STATE_PRESENT)


def _call(reader: str, action: str, function: Callable[..., Any], *args: Any) -> Any:
    """One pyscard call; its own exception type becomes `ReaderIOError`."""
    try:
        return function(*args)
    except scard.error as error:
        raise ReaderIOError(f"{reader}: {action}: pyscard failed: {error}") from error


def _check(hresult: Any, reader: str, action: str) -> None:
    code = _code(hresult)
    if code == SUCCESS:
        return
    name = _NAMES.get(code, "unknown PC/SC error")
    error = CardIOError if code in _CARD_LOST else ReaderIOError
    raise error(f"{reader}: {action}: {name} (0x{code:08X})")


def _establish(reader: str) -> int:
    hresult, context = _call(
        reader, "opening a PC/SC context", scard.SCardEstablishContext, scard.SCARD_SCOPE_USER
    )
    _check(hresult, reader, "opening a PC/SC context (is pcscd running?)")
    return int(context)


@contextmanager
def _context(reader: str) -> Iterator[int]:
    context = _establish(reader)
    try:
        yield context
    finally:
        _release(context)


def _release(context: int) -> None:
    # Never raises: a context that will not release belongs to a service that is already gone,
    # and raising here would hide the error that brought us to this cleanup.
    try:
        scard.SCardReleaseContext(context)
    except scard.error:
        return


def _disconnect(card: int, reader: str) -> None:
    # Unpowering makes the card forget an unfinished session, as CARD.md's tearing rule wants.
    hresult = _call(reader, "disconnecting", scard.SCardDisconnect, card, scard.SCARD_UNPOWER_CARD)
    if _code(hresult) in _CARD_LOST:
        return  # the card already left: it is as unpowered as we wanted it
    _check(hresult, reader, "disconnecting")
