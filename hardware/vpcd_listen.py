"""A card reader that stands where vpcd does: it listens on a TCP port and a card connects to it.

The card emulator presents a card by connecting to vsmartcard's vpcd, which pcscd drives
(`hardware.emulator.vpcd`). A machine without pcscd (a fresh laptop, the demo) can still run a
validator on an emulated card with this reader: it speaks vpcd's side of the same protocol
(`hardware.vpcd_wire`), so the emulator connects to it exactly as it connects to vpcd, and the
validator reads through the same `CardReader` port as through PC/SC.

A card is in the field while its connection is open; one card at a time (a second one is turned
away while the first stays). `power_on` sends "power on" and asks for the ATR, as vpcd does when
pcscd connects; `power_off` sends "power off". A reply of length 0, or the connection closing,
is the card leaving: the APDU in flight fails with `CardIOError`, and the field is empty until
the card connects again. Presence is read from the socket (on Linux with `POLLRDHUP`, elsewhere
by peeking: the card never speaks first, so a readable socket with nothing in it is the end of
the stream), never by asking the card as pcscd's every-400-ms "get ATR" does.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from contextlib import suppress

from hardware.invariants import require
from hardware.reader import SW_BYTES, CardIOError, ReaderIOError
from hardware.vpcd_wire import (
    CONTROL_GET_ATR,
    CONTROL_POWER_OFF,
    CONTROL_POWER_ON,
    LENGTH_BYTES,
    framed,
)

READER_PREFIX = "vpcd-listen:"
# A card that does not answer one APDU within this is treated as gone.
CARD_ANSWER_TIMEOUT_S = 5.0
# How often a wait for removal looks at the connection, and the longest wait the port allows.
PRESENCE_POLL_S = 0.05
WAIT_TIMEOUT_MAX_S = 3600.0
APDU_BYTES_MIN = 4  # CLA INS P1 P2
APDU_BYTES_MAX = 261  # a short APDU, as hardware.pcsc takes


def parse_listen_address(text: str) -> tuple[str, int]:
    """`vpcd-listen:HOST:PORT` → (host, port); ValueError with a message fit for a user.

    PORT 0 asks for any free port; the reader's `name` then says which one it got."""
    if not text.startswith(READER_PREFIX):
        raise ValueError(f"{text!r} does not start with {READER_PREFIX!r}")
    host, separator, port_text = text.removeprefix(READER_PREFIX).rpartition(":")
    if not separator or not host or not port_text.isdigit() or int(port_text) >= 1 << 16:
        raise ValueError(f"{text!r} is not {READER_PREFIX}HOST:PORT")
    return host, int(port_text)


class VpcdListenReader:
    """`CardReader` (and `CancellableWaits`) over one card connected to `host:port`."""

    def __init__(self, host: str, port: int) -> None:
        try:
            self._listener = socket.create_server((host, port))
        except OSError as error:
            raise ReaderIOError(f"cannot listen on {host}:{port}: {error}") from error
        self._host, self._port = host, int(self._listener.getsockname()[1])
        self._changed = threading.Condition()
        self._card: socket.socket | None = None
        self._powered = False
        self._cancels = 0  # bumped by cancel_waits: each wait in progress returns False
        self._closed = False
        self._thread = threading.Thread(target=self._accept_cards, name=self.name, daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return f"{READER_PREFIX}{self._host}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    def __repr__(self) -> str:
        return f"VpcdListenReader({self.name!r})"

    def is_card_present(self) -> bool:
        with self._changed:
            return self._present()

    def wait_for_card(self, timeout_s: float) -> bool:
        return self._wait(timeout_s, card_wanted=True)

    def wait_for_removal(self, timeout_s: float) -> bool:
        return self._wait(timeout_s, card_wanted=False)

    def cancel_waits(self) -> None:
        with self._changed:
            self._cancels += 1
            self._changed.notify_all()

    def power_on(self) -> bytes:
        with self._changed:
            card = self._card if self._present() else None
        if card is None:
            raise CardIOError(f"{self.name}: no card in the field")
        self._send(card, bytes([CONTROL_POWER_ON]))
        atr = self._exchange(card, bytes([CONTROL_GET_ATR]))
        self._powered = True
        return atr

    def transmit(self, apdu: bytes) -> bytes:
        require(self._powered, "transmit before power_on")
        require(APDU_BYTES_MIN <= len(apdu) <= APDU_BYTES_MAX, "an APDU of impossible length")
        card = self._card
        if card is None:
            raise CardIOError(f"{self.name}: the card left the field")
        response = self._exchange(card, apdu)
        if len(response) < SW_BYTES:
            self._card_left(card)
            raise CardIOError(f"{self.name}: the card answered {response.hex()!r}, no status word")
        return response

    def power_off(self) -> None:
        if not self._powered:
            return
        self._powered = False
        card = self._card
        if card is not None:
            # A card that left meanwhile needs no power cut; the next power_on finds it gone.
            with suppress(CardIOError):
                self._send(card, bytes([CONTROL_POWER_OFF]))

    def close(self) -> None:
        """Stops listening and lets the card go."""
        with self._changed:
            self._closed = True
            card, self._card = self._card, None
            self._changed.notify_all()
        # A close alone leaves the accepting thread blocked on Linux; a shutdown wakes it.
        _hang_up(self._listener)
        if card is not None:
            _hang_up(card)
        self._thread.join(CARD_ANSWER_TIMEOUT_S)

    def _accept_cards(self) -> None:
        while True:
            try:
                card, _ = self._listener.accept()
            except OSError:
                return  # closed
            card.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            card.settimeout(CARD_ANSWER_TIMEOUT_S)
            with self._changed:
                busy = self._closed or self._present()
                if not busy:
                    self._card = card
                    self._changed.notify_all()
            if busy:
                _hang_up(card)  # one card in the field at a time

    def _present(self) -> bool:
        """Whether the connected card is still there; forgets it once its connection ended.
        Called with the condition held."""
        card = self._card
        if card is None:
            return False
        if not _hung_up(card):
            return True
        self._card = None
        self._powered = False
        _hang_up(card)
        self._changed.notify_all()
        return False

    def _wait(self, timeout_s: float, *, card_wanted: bool) -> bool:
        require(0 <= timeout_s <= WAIT_TIMEOUT_MAX_S, "a wait needs a timeout of 0..3600 s")
        deadline = time.monotonic() + timeout_s
        with self._changed:
            cancels = self._cancels
            while self._present() != card_wanted:
                left_s = deadline - time.monotonic()
                if left_s <= 0 or self._cancels != cancels or self._closed:
                    return False
                # A card arriving notifies; one leaving is only seen by looking again.
                self._changed.wait(min(left_s, PRESENCE_POLL_S))
            return self._cancels == cancels

    def _exchange(self, card: socket.socket, message: bytes) -> bytes:
        self._send(card, message)
        header = self._receive(card, LENGTH_BYTES)
        reply = self._receive(card, int.from_bytes(header, "big"))
        if not reply:
            self._card_left(card)
            raise CardIOError(f"{self.name}: the card left the field")
        return reply

    def _send(self, card: socket.socket, message: bytes) -> None:
        try:
            card.sendall(framed(message))
        except OSError as error:
            self._card_left(card)
            raise CardIOError(f"{self.name}: the card left the field ({error})") from error

    def _receive(self, card: socket.socket, size: int) -> bytes:
        received = bytearray()
        while len(received) < size:
            # Re-armed before each recv, as the emulator does: see DESIGN.md on delayed ACKs.
            if hasattr(socket, "TCP_QUICKACK"):
                with suppress(OSError):
                    card.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            try:
                chunk = card.recv(size - len(received))
            except TimeoutError as error:
                self._card_left(card)
                raise CardIOError(f"{self.name}: the card stopped answering") from error
            except OSError as error:
                self._card_left(card)
                raise CardIOError(f"{self.name}: the card left the field ({error})") from error
            if not chunk:
                self._card_left(card)
                raise CardIOError(f"{self.name}: the card left the field")
            received += chunk
        return bytes(received)

    def _card_left(self, card: socket.socket) -> None:
        with self._changed:
            if self._card is card:
                self._card = None
                self._powered = False
                self._changed.notify_all()
        _hang_up(card)


def _hung_up(card: socket.socket) -> bool:
    """Whether the card's end closed the connection (or it broke), without reading from it."""
    try:
        if _RDHUP:
            # Linux says so directly, leaving any bytes in flight to the transaction's recv.
            poller = select.poll()
            poller.register(card, select.POLLIN | _RDHUP)
            return any(mask & _GONE for _, mask in poller.poll(0))
        readable, _, _ = select.select([card], [], [], 0)
        # Elsewhere: readable with nothing to peek at is the end of the stream.
        return bool(readable) and not card.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False  # the transaction read what was there first
    except (ValueError, OSError):
        return True  # closed here, or reset by the card's side: gone either way


_RDHUP = getattr(select, "POLLRDHUP", 0)
_GONE = (
    _RDHUP
    | getattr(select, "POLLHUP", 0)
    | getattr(select, "POLLERR", 0)
    | getattr(select, "POLLNVAL", 0)
)


def _hang_up(card: socket.socket) -> None:
    with suppress(OSError):
        card.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        card.close()
