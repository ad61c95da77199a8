"""The listening reader (`--reader vpcd-listen:HOST:PORT`): the reader contract with the card
emulator connecting to it over loopback, as it connects to vpcd; then what only this driver does."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from hardware import vpcd_listen
from hardware.emulator.card import EmulatedCard
from hardware.emulator.vpcd import VpcdLink
from hardware.reader import CardIOError, ReaderIOError
from hardware.vpcd_listen import VpcdListenReader, parse_listen_address
from hardware.vpcd_wire import framed
from tests.builders.card_emulator import MASTER_KEYS, trace_bytes
from tests.card_reader_contract import CardOnReader, CardReaderContract, Present, vectors_card
from validators import cli as validator_cli
from validators.cli import validator_app

LOOPBACK = "127.0.0.1"
# Unlike pcscd, the reader sees a card leave at once, so a torn card need only stay away briefly.
ABSENT_S = 0.2
POLL_S = 0.02  # how soon the link notices its stop event
WAIT_S = 5.0
LINK_STOP_TIMEOUT_S = 5.0

pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True)
class Listening:
    reader: VpcdListenReader
    card: EmulatedCard


@contextmanager
def card_connected(card: EmulatedCard, reader: VpcdListenReader) -> Iterator[None]:
    """The emulator's link to the reader, in a thread, until the block ends."""
    stop = threading.Event()
    link = VpcdLink(card, host=LOOPBACK, port=reader.port, absent_s=ABSENT_S, poll_s=POLL_S)
    thread = threading.Thread(target=link.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(LINK_STOP_TIMEOUT_S)
    assert not thread.is_alive(), "the card's link did not stop"


@contextmanager
def listening(card: EmulatedCard) -> Iterator[Listening]:
    reader = VpcdListenReader(LOOPBACK, 0)
    try:
        with card_connected(card, reader):
            assert reader.wait_for_card(WAIT_S)
            reader.power_on()
            yield Listening(reader, card)
            reader.power_off()
    finally:
        reader.close()


class TestVpcdListenReader(CardReaderContract):
    @pytest.fixture
    def present(self) -> Present:
        def on_listener(card: EmulatedCard) -> AbstractContextManager[CardOnReader]:
            return listening(card)

        return on_listener


class TestVpcdListenReaderWithoutPollRdhup(TestVpcdListenReader):
    """The same contract where the system has no POLLRDHUP (macOS): a hang-up is seen by
    peeking at the connection instead."""

    @pytest.fixture(autouse=True)
    def no_rdhup(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(vpcd_listen, "_RDHUP", 0)


@pytest.fixture
def reader() -> Iterator[VpcdListenReader]:
    reader = VpcdListenReader(LOOPBACK, 0)
    yield reader
    reader.close()


def test_the_address_is_read_from_vpcd_listen_host_and_port() -> None:
    assert parse_listen_address("vpcd-listen:127.0.0.1:35999") == ("127.0.0.1", 35999)
    assert parse_listen_address("vpcd-listen:localhost:0") == ("localhost", 0)


@pytest.mark.parametrize(
    "text",
    ["127.0.0.1:35999", "vpcd-listen:127.0.0.1", "vpcd-listen::35999", "vpcd-listen:h:65536"],
)
def test_an_address_that_is_not_vpcd_listen_host_port_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="vpcd-listen"):
        parse_listen_address(text)


def test_port_zero_listens_on_a_free_port_that_the_name_tells(reader: VpcdListenReader) -> None:
    assert reader.port > 0
    assert reader.name == f"vpcd-listen:{LOOPBACK}:{reader.port}"


def test_a_port_already_taken_is_a_reader_error(reader: VpcdListenReader) -> None:
    with pytest.raises(ReaderIOError, match="cannot listen"):
        VpcdListenReader(LOOPBACK, reader.port)


def test_an_empty_field_has_no_card_and_cannot_power_on(reader: VpcdListenReader) -> None:
    assert not reader.is_card_present()
    assert not reader.wait_for_card(0.05)
    assert reader.wait_for_removal(0)
    with pytest.raises(CardIOError, match="no card"):
        reader.power_on()


def test_a_card_hanging_up_empties_the_field(reader: VpcdListenReader) -> None:
    card = vectors_card()
    with card_connected(card, reader):
        assert reader.wait_for_card(WAIT_S)
    assert reader.wait_for_removal(WAIT_S)
    assert not reader.is_card_present()


def test_a_second_card_is_turned_away_while_the_first_is_in_the_field(
    reader: VpcdListenReader,
) -> None:
    with card_connected(vectors_card(), reader):
        assert reader.wait_for_card(WAIT_S)
        with socket.create_connection((LOOPBACK, reader.port)) as second:
            second.settimeout(WAIT_S)
            assert second.recv(1) == b""  # hung up on
        reader.power_on()
        assert reader.transmit(trace_bytes(0, "command"))[-2:] == b"\x90\x00"


def test_a_card_answering_without_a_status_word_is_a_card_error(
    reader: VpcdListenReader,
) -> None:
    with socket.create_connection((LOOPBACK, reader.port)) as card:
        card.settimeout(WAIT_S)
        assert reader.wait_for_card(WAIT_S)
        answers = threading.Thread(target=_answer_power_on_then, args=(card, b"\x90"))
        answers.start()
        reader.power_on()
        with pytest.raises(CardIOError, match="no status word"):
            reader.transmit(trace_bytes(0, "command"))
        answers.join(WAIT_S)
    assert not reader.is_card_present()


def test_cancel_waits_ends_a_wait_blocked_in_another_thread(reader: VpcdListenReader) -> None:
    results: list[bool] = []
    waiting = threading.Thread(target=lambda: results.append(reader.wait_for_card(WAIT_S * 10)))
    waiting.start()
    # Cancels until the waiter has returned: a cancel before its wait began would be missed.
    while waiting.is_alive():
        reader.cancel_waits()
        waiting.join(POLL_S)
    assert results == [False]


def _answer_power_on_then(card: socket.socket, reply: bytes) -> None:
    """The card's side by hand: reads power on and get ATR (answering the ATR), one APDU
    (answering `reply`)."""
    for answer in (None, b"\x3b\x00", reply):
        header = card.recv(2)
        card.recv(int.from_bytes(header, "big"))
        if answer is not None:
            card.sendall(framed(answer))


def run_validator(tmp_path: Path, reader: str) -> Result:
    """`validator run --once` on `reader`, against a backend nobody serves."""
    (tmp_path / "device.token").write_text("tlk_device_token\n")
    keys = {str(int(level)): key.hex() for level, key in MASTER_KEYS.items()}
    (tmp_path / "sam.json").write_text(json.dumps(keys))
    with socket.socket() as unused:
        unused.bind((LOOPBACK, 0))
        dead = f"http://{LOOPBACK}:{unused.getsockname()[1]}"
    return CliRunner().invoke(
        validator_app,
        [
            *("run", "--server", dead, "--validator-id", "3101"),
            *("--token-file", str(tmp_path / "device.token")),
            *("--state-dir", str(tmp_path / "gate")),
            *("--reader", reader, "--sam-key-file", str(tmp_path / "sam.json"), "--plain"),
            *("--once", "--card-wait-s", "1"),
        ],
    )


def test_validator_run_listens_on_vpcd_listen_and_says_where(tmp_path: Path) -> None:
    run = run_validator(tmp_path, f"vpcd-listen:{LOOPBACK}:0")
    assert run.exit_code == validator_cli.EXIT_NO_CARD, run.output
    assert f"card reader vpcd-listen:{LOOPBACK}:" in run.output
    assert "no card was presented within 1 s" in run.output


def test_validator_run_refuses_a_vpcd_listen_reader_without_a_port(tmp_path: Path) -> None:
    run = run_validator(tmp_path, f"vpcd-listen:{LOOPBACK}")
    assert run.exit_code == validator_cli.EXIT_BAD_INPUT, run.output
    assert "is not vpcd-listen:HOST:PORT" in run.output
