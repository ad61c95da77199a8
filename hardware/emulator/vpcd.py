"""Plugs an `EmulatedCard` into pcscd as a virtual card of vsmartcard's `vpcd` reader driver.

The protocol, as vpcd implements it (virtualsmartcard/src/vpcd/vpcd.c and ifd-vpcd.c): vpcd
listens on 35963 and we connect. Every message either way is a 2-byte big-endian length and a
payload. From vpcd, a 1-byte payload is a control code: 00 power off, 01 power on, 02 reset (none
of them answered) and 04 "get ATR", answered with the ATR; vpcd also sends 04 every ~400 ms as
pcscd's presence poll. Any longer payload is a command APDU, answered with the response APDU.

A reply of length 0, or a closed connection, is how a card leaves the field: vpcd reads a 0-byte
reply as "Virtual ICC removed", closes the connection, and pcscd hands the waiting SCardTransmit an
empty response (pyscard: "Card returned no valid response"). A torn card therefore answers the
APDU it could not process with a 0-length message, hangs up, and stays away longer than pcscd's
presence poll so that pcscd sees the card removed; then it connects again, like a card presented
anew, and vpcd powers it up.
"""

from __future__ import annotations

import logging
import socket
import threading
from enum import Enum

from hardware.emulator.card import ATR, CardTorn, EmulatedCard
from hardware.vpcd_wire import (
    CONTROL_BYTES,
    CONTROL_GET_ATR,
    CONTROL_POWER_OFF,
    CONTROL_POWER_ON,
    CONTROL_RESET,
    LENGTH_BYTES,
    framed,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 35963
# A blocked recv wakes up this often to look at the stop event.
RECV_POLL_S = 0.2
CONNECT_TIMEOUT_S = 2.0
RECONNECT_DELAY_S_MIN = 0.1
RECONNECT_DELAY_S_MAX = 2.0
# pcscd polls a reader's presence every 400 ms (PCSCLITE_STATUS_POLL_RATE); a torn card must stay
# out of the field longer than that, or pcscd never notices that it left.
ABSENT_S_DEFAULT = 1.0

log = logging.getLogger(__name__)


class Ending(Enum):
    """Why one connection to vpcd ended."""

    STOPPED = "stopped"
    VPCD_CLOSED = "vpcd closed the connection"
    TORN = "the card was torn from the field"


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` → (host, port); raises ValueError with a message fit for a user."""
    host, separator, port_text = text.rpartition(":")
    if not separator or not host or not port_text.isdigit() or not 0 < int(port_text) < 1 << 16:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host, int(port_text)


class VpcdLink:
    """One emulated card, presented to vpcd at `host:port` until `run`'s stop event is set."""

    def __init__(
        self,
        card: EmulatedCard,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        absent_s: float = ABSENT_S_DEFAULT,
        poll_s: float = RECV_POLL_S,
    ) -> None:
        self.card = card
        self.host = host
        self.port = port
        self.absent_s = absent_s
        self.poll_s = poll_s

    def run(self, stop: threading.Event) -> None:
        """Connects (again and again, with bounded backoff while vpcd is not up) until `stop`."""
        delay_s = RECONNECT_DELAY_S_MIN
        while not stop.is_set():
            try:
                connection = socket.create_connection(
                    (self.host, self.port), timeout=CONNECT_TIMEOUT_S
                )
            except OSError as error:
                log.debug("vpcd at %s:%d is not reachable (%s)", self.host, self.port, error)
                stop.wait(delay_s)
                delay_s = min(2 * delay_s, RECONNECT_DELAY_S_MAX)
                continue
            delay_s = RECONNECT_DELAY_S_MIN
            log.info("connected to vpcd at %s:%d", self.host, self.port)
            with connection:
                ending = self.serve(connection, stop)
            log.info("%s", ending.value)
            if ending is Ending.TORN:
                stop.wait(self.absent_s)
            elif ending is Ending.VPCD_CLOSED:
                stop.wait(delay_s)

    def serve(self, connection: socket.socket, stop: threading.Event) -> Ending:
        """Answers vpcd on one connection until it closes, the card is torn, or `stop`."""
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.settimeout(self.poll_s)
        while True:
            header = _receive(connection, LENGTH_BYTES, stop)
            if header is None:
                return Ending.STOPPED if stop.is_set() else Ending.VPCD_CLOSED
            message = _receive(connection, int.from_bytes(header, "big"), stop)
            if message is None:
                return Ending.STOPPED if stop.is_set() else Ending.VPCD_CLOSED
            ending: Ending | None = None
            try:
                reply = self._answer(message)
            except CardTorn as torn:
                # The 0-length reply tells vpcd the card is gone (see the module docstring).
                log.info("%s", torn)
                reply, ending = b"", Ending.TORN
            try:
                if reply is not None:
                    _send(connection, reply)
            except OSError:
                return Ending.VPCD_CLOSED
            if ending is not None:
                return ending

    def _answer(self, message: bytes) -> bytes | None:
        if len(message) != CONTROL_BYTES:
            response = self.card.transmit(message)
            log.debug("%s → %s", message.hex(), response.hex())
            return response
        code = message[0]
        if code == CONTROL_GET_ATR:
            return ATR
        if code == CONTROL_POWER_ON:
            self.card.power_on()
        elif code == CONTROL_POWER_OFF:
            self.card.power_off()
        elif code == CONTROL_RESET:
            self.card.reset()
        else:
            # vsmartcard's own virtual card ignores unknown control codes too (VirtualSmartcard.py).
            log.warning("vpcd sent an unknown control code %02X", code)
        return None


def _receive(connection: socket.socket, size: int, stop: threading.Event) -> bytes | None:
    """Exactly `size` bytes, or None when the peer closed or `stop` was set."""
    received = bytearray()
    while len(received) < size:
        # Linux drops out of quick-ACK mode on its own, so it is armed again before each recv:
        # otherwise vpcd's next small send can wait ~40 ms for our delayed ACK (DESIGN.md).
        if hasattr(socket, "TCP_QUICKACK"):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        try:
            chunk = connection.recv(size - len(received))
        except TimeoutError:
            if stop.is_set():
                return None
            continue
        except OSError:
            return None
        if not chunk:
            return None
        received += chunk
    return bytes(received)


def _send(connection: socket.socket, payload: bytes) -> None:
    connection.sendall(framed(payload))
