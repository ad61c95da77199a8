"""Every card, SAM and reader failure at a tap ends as a recorded refusal, and the gate goes on."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from hardware.emulator.card import CardTorn, EmulatedCard
from hardware.fake_reader import CardInReader, ScriptedReader
from hardware.reader import ReaderIOError
from hardware.sam import SoftwareSam
from hardware.tlc1.commands import Select
from hardware.tlc1.constants import KeyLevel
from hardware.tlc1.terminal import Terminal
from tests.builders.card_validation import (
    BUS,
    MASTER_KEYS,
    NOW,
    SERIAL,
    issued_card,
    purse,
)
from tests.doubles import SecondsClock
from tests.validator_fakes import FakeBackend, config_body
from validators import cli as validator_cli
from validators.card_station import CardStation
from validators.card_validation import CardValidator, Outcome, Validation
from validators.device import Device
from validators.gate import GateDecision
from validators.tap_printer import TapPrinter

OTHER_KEYS = {level: bytes([0xC0 + level]) * 16 for level in KeyLevel}
CLOSE_INS = 0x8E


def cloned_card() -> EmulatedCard:
    """The genuine card's serial, personalised and loaded with keys that are not the issuer's."""
    clone = EmulatedCard.from_master_keys(OTHER_KEYS, SERIAL)
    genuine = issued_card()
    clone.image = genuine.image.copy()
    return clone


def validate(card: Any, sam: SoftwareSam | None = None) -> Validation:
    reader = CardInReader(card, "gate", lost_card_errors=(CardTorn,))
    reader.power_on()
    term = Terminal(reader, sam or SoftwareSam(MASTER_KEYS))
    return CardValidator(term, BUS, denied_serials=frozenset(), clock=lambda: NOW).validate()


class ChangedCardMac:
    """A card whose CLOSE answer is changed on the way: the SAM must reject the card's MAC."""

    def __init__(self, card: EmulatedCard) -> None:
        self.card = card

    def power_on(self) -> bytes:
        return self.card.power_on()

    def power_off(self) -> None:
        self.card.power_off()

    def transmit(self, apdu: bytes) -> bytes:
        response = self.card.transmit(apdu)
        if apdu[1] == CLOSE_INS and len(response) > 2:
            return bytes([response[0] ^ 0xFF]) + response[1:]
        return response


def test_a_cloned_card_is_refused_as_not_genuine_and_keeps_its_purse() -> None:
    clone = cloned_card()
    result = validate(clone)
    assert (result.outcome, result.serial, result.proof) == (
        Outcome.CARD_NOT_GENUINE,
        SERIAL,
        None,
    )
    assert not result.accepted
    assert clone.image.purse_vnd == 50_000  # the card refused our MAC and wrote nothing


def test_a_card_mac_the_sam_rejects_is_not_genuine_and_its_answer_goes_upstream() -> None:
    result = validate(ChangedCardMac(issued_card()))
    assert result.outcome is Outcome.CARD_NOT_GENUINE
    assert result.proof is not None  # the backend, holding the keys, examines what it said
    assert result.proof.serial == SERIAL


def test_a_card_whose_counter_is_exhausted_is_refused_with_a_reason() -> None:
    card = issued_card()
    card.image.transaction_counter = 0  # OPEN answers 6900 for good
    assert validate(card).outcome is Outcome.CARD_REFUSED


def test_a_sam_without_the_debit_key_refuses_the_tap_and_leaves_the_card_usable() -> None:
    card = issued_card()
    load_only = SoftwareSam({KeyLevel.LOAD: MASTER_KEYS[KeyLevel.LOAD]})
    assert validate(card, load_only).outcome is Outcome.SAM_CANNOT_SERVE
    assert not card.in_session
    assert validate(card).outcome is Outcome.CHARGED


def test_a_failing_reader_is_a_refusal_not_an_exception() -> None:
    reader = ScriptedReader("gate", [(Select().apdu, ReaderIOError("pcscd went away"))])
    reader.power_on()
    term = Terminal(reader, SoftwareSam(MASTER_KEYS))
    result = CardValidator(term, BUS, denied_serials=frozenset(), clock=lambda: NOW).validate()
    assert result.outcome is Outcome.READER_FAILED


# --- at the gate, with the card thread of `validator run` --------------------------------------


class CardsInTurn(CardInReader):
    """A reader at which cards are presented one after the other; each leaves after its tap."""

    def __init__(self, cards: list[Any]) -> None:
        super().__init__(cards[0], "gate", lost_card_errors=(CardTorn,))
        self._queue = list(cards)

    def wait_for_card(self, timeout_s: float) -> bool:
        assert timeout_s >= 0  # answers at once: the next card is already there, or none is
        return bool(self._queue)

    def wait_for_removal(self, timeout_s: float) -> bool:
        assert timeout_s >= 0
        self.remove_card()
        self._queue.pop(0)
        if self._queue:
            self._card = self._queue[0]
            self.insert_card()
        return True


class Decisions(TapPrinter):
    """The CLI's printer, also keeping each decision; `served` is set after `expected` of them."""

    def __init__(self, expected: int) -> None:
        super().__init__(plain=True)
        self.seen: list[GateDecision] = []
        self.expected = expected
        self.served = threading.Event()

    def decision(self, decision: GateDecision) -> None:
        super().decision(decision)
        self.seen.append(decision)
        if len(self.seen) >= self.expected:
            self.served.set()


def serve_in_thread(station: CardStation, device: Device, printer: Decisions) -> None:
    stop = threading.Event()
    worker = threading.Thread(
        target=validator_cli._serve_cards, args=(station, device, printer, stop), daemon=True
    )
    worker.start()
    try:
        assert printer.served.wait(30), "the card thread stopped serving"
    finally:
        stop.set()
        worker.join(30)
    assert not worker.is_alive()


def device_with_config(tmp_path: Path) -> Device:
    device = Device(
        FakeBackend(), tmp_path, validator_id=1, sync_interval_s=60, clock=SecondsClock()
    )
    assert device.sync()
    return device


def test_a_cloned_card_at_a_running_gate_is_recorded_and_the_next_card_is_served(
    tmp_path: Path,
) -> None:
    device = device_with_config(tmp_path)
    genuine = issued_card()
    reader = CardsInTurn([cloned_card(), genuine])
    station = CardStation(reader, SoftwareSam(MASTER_KEYS), device.gate, clock=SecondsClock(NOW))
    printer = Decisions(expected=2)
    serve_in_thread(station, device, printer)

    assert [(d.accepted, d.reason) for d in printer.seen] == [
        (False, "card_not_genuine"),
        (True, "charged"),
    ]
    refused = device.outbox.get(1)
    assert refused is not None
    assert (refused.decision, refused.reason) == ("refused", "card_not_genuine")
    assert refused.upload_fields["serial"] == SERIAL.hex()
    assert purse(genuine) == 50_000 - config_body(1)["media"][0]["max_fare_vnd"]
    device.close()


class BrokenSam:
    def open_session(self, **_: Any) -> Any:
        raise RuntimeError("a bug nobody foresaw")


def test_an_unexpected_error_is_recorded_as_a_fault_and_the_thread_goes_on(
    tmp_path: Path,
) -> None:
    device = device_with_config(tmp_path)
    faults: list[str] = []
    reader = CardsInTurn([issued_card(), issued_card()])
    station = CardStation(
        reader,
        BrokenSam(),
        device.gate,
        clock=SecondsClock(NOW),
        on_fault=lambda what, error: faults.append(f"{what}: {error}"),
    )
    printer = Decisions(expected=2)
    serve_in_thread(station, device, printer)
    assert [d.reason for d in printer.seen] == ["validator_fault", "validator_fault"]
    assert faults == ["card: a bug nobody foresaw"] * 2
    assert device.outbox.pending_count() == 2
    device.close()


class ReaderDownOnce(CardsInTurn):
    def __init__(self, cards: list[Any]) -> None:
        super().__init__(cards)
        self.failed = False

    def wait_for_card(self, timeout_s: float) -> bool:
        if not self.failed:
            self.failed = True
            raise ReaderIOError("pcscd restarted")
        return super().wait_for_card(timeout_s)


def test_a_reader_failing_between_cards_does_not_end_the_card_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validator_cli, "CARD_FAULT_PAUSE_S", 0)
    device = device_with_config(tmp_path)
    station = CardStation(
        ReaderDownOnce([issued_card()]),
        SoftwareSam(MASTER_KEYS),
        device.gate,
        clock=SecondsClock(NOW),
    )
    printer = Decisions(expected=1)
    serve_in_thread(station, device, printer)
    assert [d.reason for d in printer.seen] == ["charged"]
    device.close()


def test_validator_run_once_with_a_cloned_card_records_it_and_exits_normally(
    tmp_path: Path,
) -> None:
    device = device_with_config(tmp_path)
    station = CardStation(
        CardsInTurn([cloned_card()]), SoftwareSam(MASTER_KEYS), device.gate, clock=SecondsClock(NOW)
    )
    printer = Decisions(expected=1)
    validator_cli._run_once(device, station, printer, qr_stdin=False, attempts=1)
    assert [d.reason for d in printer.seen] == ["card_not_genuine"]
    assert device.outbox.pending_count() == 0  # uploaded: the backend is told of the clone
    device.close()
