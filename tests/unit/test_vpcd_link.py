"""The emulated card's link to vpcd, against a fake vpcd on a loopback socket.

The fake speaks vpcd's side of the protocol (virtualsmartcard/src/vpcd/vpcd.c): it listens, the
card connects, and every message is a 2-byte big-endian length and a payload.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from hardware.emulator.card import ATR, EmulatedCard
from hardware.emulator.vpcd import VpcdLink, parse_address
from hardware.tlc1.constants import KeyLevel, Sfi
from hardware.vpcd_wire import CONTROL_GET_ATR, CONTROL_POWER_OFF, CONTROL_POWER_ON, CONTROL_RESET
from tests.builders.card_emulator import (
    MASTER_KEYS,
    OK,
    SERIAL,
    TRACE,
    increase_apdu,
    open_apdu,
    read_apdu,
    select_apdu,
    trace_card_challenges,
)

WAIT_S = 5.0
ABSENT_S = 0.3
POLL_S = 0.02  # how soon the link notices its stop event; short, so the tests are quick
LOOPBACK = "127.0.0.1"
# What the link logs on each refused attempt and once connected: the tests wait for these, not
# for time to pass, so a busy machine makes them slower, never wrong.
REFUSED = "is not reachable"
CONNECTED = "connected to vpcd"
REFUSED_FIRST = 3  # refused attempts before the fake vpcd comes up
LOG_POLL_S = 0.01


class FakeVpcd:
    """vpcd's end: accepts the virtual card and exchanges length-prefixed messages with it."""

    def __init__(self, port: int = 0) -> None:
        self.server = socket.create_server((LOOPBACK, port))
        self.server.settimeout(WAIT_S)
        self.port: int = self.server.getsockname()[1]
        self.connection: socket.socket | None = None

    def accept(self) -> None:
        self.connection, _ = self.server.accept()
        self.connection.settimeout(WAIT_S)

    def send(self, payload: bytes) -> None:
        assert self.connection is not None
        self.connection.sendall(len(payload).to_bytes(2, "big") + payload)

    def receive(self) -> bytes | None:
        """The next message, or None when the card hung up."""
        header = self._exactly(2)
        if header is None:
            return None
        return self._exactly(int.from_bytes(header, "big"))

    def exchange(self, apdu: bytes) -> bytes | None:
        self.send(apdu)
        return self.receive()

    def power_on(self) -> None:
        self.send(bytes([CONTROL_POWER_ON]))

    def _exactly(self, size: int) -> bytes | None:
        assert self.connection is not None
        received = b""
        while len(received) < size:
            chunk = self.connection.recv(size - len(received))
            if not chunk:
                return None
            received += chunk
        return received

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.server.close()


def unpowered_card(**options: Any) -> EmulatedCard:
    return EmulatedCard.from_master_keys(MASTER_KEYS, SERIAL, **options)


@pytest.fixture
def link_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Everything the link logs, from before it starts."""
    caplog.set_level(logging.DEBUG, logger=VpcdLink.__module__)
    return caplog


def wait_for_log(caplog: pytest.LogCaptureFixture, text: str, count: int) -> None:
    """Until the link has logged `text` `count` times, at most `WAIT_S`."""
    deadline = time.monotonic() + WAIT_S
    while sum(text in record.getMessage() for record in caplog.records) < count:
        assert time.monotonic() < deadline, f"the link did not log {text!r} {count} times"
        time.sleep(LOG_POLL_S)


@contextmanager
def running(link: VpcdLink) -> Iterator[threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=link.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(WAIT_S)
    assert not thread.is_alive(), "the link did not stop"


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


def test_answers_power_on_get_atr_and_every_trace_apdu_byte_for_byte(vpcd: FakeVpcd) -> None:
    card = unpowered_card(challenges=trace_card_challenges())
    with running(VpcdLink(card, port=vpcd.port, poll_s=POLL_S)):
        vpcd.accept()
        vpcd.power_on()  # vpcd expects no answer to a power control
        assert vpcd.exchange(bytes([CONTROL_GET_ATR])) == ATR
        for exchange in TRACE:
            response = vpcd.exchange(bytes.fromhex(exchange["command"]))
            assert response is not None
            assert response.hex().upper() == exchange["response"]
    assert card.image.purse_vnd == 42_000


def test_get_atr_is_answered_before_power_on_as_vpcd_polls_presence(vpcd: FakeVpcd) -> None:
    card = unpowered_card()
    with running(VpcdLink(card, port=vpcd.port, poll_s=POLL_S)):
        vpcd.accept()
        assert vpcd.exchange(bytes([CONTROL_GET_ATR])) == ATR
        assert not card.powered


@pytest.mark.parametrize("controls", [[CONTROL_POWER_OFF, CONTROL_POWER_ON], [CONTROL_RESET]])
def test_power_off_or_reset_from_vpcd_drops_the_open_session(
    vpcd: FakeVpcd, controls: list[int]
) -> None:
    card = unpowered_card()
    with running(VpcdLink(card, port=vpcd.port, poll_s=POLL_S)):
        vpcd.accept()
        vpcd.power_on()
        vpcd.exchange(select_apdu())
        vpcd.exchange(open_apdu(KeyLevel.LOAD))
        assert vpcd.exchange(increase_apdu(5_000)) == (5_000).to_bytes(3, "big") + OK
        for control in controls:
            vpcd.send(bytes([control]))
        assert vpcd.exchange(select_apdu()) is not None
        assert vpcd.exchange(read_apdu(Sfi.PURSE)) == bytes(29) + OK


def test_a_torn_card_sends_an_empty_reply_hangs_up_and_comes_back_after_a_while(
    vpcd: FakeVpcd,
) -> None:
    card = unpowered_card(tear_after=1)
    with running(VpcdLink(card, port=vpcd.port, absent_s=ABSENT_S, poll_s=POLL_S)):
        vpcd.accept()
        vpcd.power_on()
        assert vpcd.exchange(select_apdu()) is not None
        assert vpcd.exchange(read_apdu(Sfi.PURSE)) == b""  # vpcd's "Virtual ICC removed"
        assert vpcd.receive() is None  # and the card hangs up
        torn_at = time.monotonic()
        vpcd.accept()
        assert time.monotonic() - torn_at >= ABSENT_S * 0.9  # away long enough to be seen gone
        vpcd.power_on()
        assert vpcd.exchange(select_apdu()) == bytes.fromhex("6F118405F0544C4331C708") + SERIAL + OK


def test_the_card_connects_once_vpcd_comes_up(link_log: pytest.LogCaptureFixture) -> None:
    probe = socket.create_server((LOOPBACK, 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens on the port until the fake vpcd starts below
    with running(VpcdLink(unpowered_card(), port=port, poll_s=POLL_S)):
        wait_for_log(link_log, REFUSED, REFUSED_FIRST)
        late = FakeVpcd(port)
        try:
            late.accept()
            assert late.exchange(bytes([CONTROL_GET_ATR])) == ATR
        finally:
            late.close()


def test_the_card_connects_again_when_vpcd_restarts(vpcd: FakeVpcd) -> None:
    with running(VpcdLink(unpowered_card(), port=vpcd.port, poll_s=POLL_S)):
        vpcd.accept()
        assert vpcd.connection is not None
        vpcd.connection.close()
        vpcd.accept()
        assert vpcd.exchange(bytes([CONTROL_GET_ATR])) == ATR


def test_stop_ends_the_link_while_it_waits_for_vpcd(link_log: pytest.LogCaptureFixture) -> None:
    probe = socket.create_server((LOOPBACK, 0))
    port = probe.getsockname()[1]
    probe.close()
    with running(VpcdLink(unpowered_card(), port=port, poll_s=POLL_S)):
        wait_for_log(link_log, REFUSED, 1)  # now waiting before it tries again
        stopped = time.monotonic()
    assert time.monotonic() - stopped < WAIT_S / 2


def test_stop_ends_the_link_while_connected_and_idle(
    vpcd: FakeVpcd, link_log: pytest.LogCaptureFixture
) -> None:
    with running(VpcdLink(unpowered_card(), port=vpcd.port, poll_s=POLL_S)):
        vpcd.accept()
        wait_for_log(link_log, CONNECTED, 1)
    assert vpcd.receive() is None  # the card closed its end


def test_the_link_turns_off_nagle_on_its_connection(vpcd: FakeVpcd) -> None:
    client = socket.create_connection((LOOPBACK, vpcd.port))
    vpcd.accept()
    stop = threading.Event()
    serving = threading.Thread(
        target=VpcdLink(unpowered_card(), poll_s=POLL_S).serve, args=(client, stop)
    )
    serving.start()
    try:
        assert vpcd.exchange(bytes([CONTROL_GET_ATR])) == ATR
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        stop.set()
        serving.join(WAIT_S)
        client.close()


@pytest.mark.parametrize(
    ("text", "address"),
    [("127.0.0.1:35963", ("127.0.0.1", 35963)), ("localhost:1", ("localhost", 1))],
)
def test_vpcd_addresses_are_host_and_port(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text) == address


@pytest.mark.parametrize("text", ["127.0.0.1", ":35963", "host:", "host:0", "host:65536", "h:x"])
def test_malformed_vpcd_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_address(text)
