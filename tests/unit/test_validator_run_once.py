"""`validator run --once`: its exit codes, and its JSON Lines with the backend's verdict per tap."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from hardware.emulator.card import CardTorn
from hardware.fake_reader import CardInReader
from hardware.sam import SoftwareSam, seal_key_file
from tapledger.cli import app
from tests.builders.card_validation import MASTER_KEYS, issued_card
from tests.doubles import SecondsClock
from tests.validator_fakes import NOW, FakeBackend, phone
from validators import cli as validator_cli
from validators.card_station import CardStation
from validators.device import Device, Drained
from validators.tap_printer import TapPrinter

CARD_WAIT_S = 5


def json_printer() -> tuple[TapPrinter, io.StringIO]:
    out = io.StringIO()
    return TapPrinter(plain=True, json_lines=True, out=out), out


def objects(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def device_for(backend: FakeBackend, tmp_path: Path, printer: TapPrinter) -> Device:
    device = Device(
        backend,
        tmp_path,
        validator_id=backend.validator_id,
        sync_interval_s=60,
        clock=SecondsClock(NOW),
        on_answers=printer.verdicts,
    )
    assert device.sync()
    return device


def station_without_a_card(device: Device) -> CardStation:
    reader = CardInReader(issued_card(), "gate", lost_card_errors=(CardTorn,), card_present=False)
    return CardStation(reader, SoftwareSam(MASTER_KEYS), device.gate, clock=SecondsClock(NOW))


def run_once(device: Device, station: CardStation | None, printer: TapPrinter, **kw: Any) -> int:
    try:
        validator_cli._run_once(device, station, printer, attempts=1, **kw)
    except typer.Exit as end:
        return int(end.exit_code)
    return validator_cli.EXIT_OK


def test_once_with_a_reader_and_no_card_presented_exits_no_card_and_says_so(
    tmp_path: Path,
) -> None:
    printer, out = json_printer()
    device = device_for(FakeBackend(), tmp_path, printer)
    code = run_once(
        device, station_without_a_card(device), printer, qr_stdin=False, card_wait_s=CARD_WAIT_S
    )
    assert code == validator_cli.EXIT_NO_CARD != validator_cli.EXIT_OK
    assert objects(out) == [
        {"type": "no_card", "waited_s": CARD_WAIT_S},
        {
            "type": "summary",
            "uploaded": 0,
            "pending": 0,
            "held": 0,
            "last_seq": 0,
            "exit_code": validator_cli.EXIT_NO_CARD,
        },
    ]
    device.close()


def test_no_card_is_said_on_stderr_in_text_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    printer = TapPrinter(plain=True)
    device = device_for(FakeBackend(), tmp_path, printer)
    code = run_once(
        device, station_without_a_card(device), printer, qr_stdin=False, card_wait_s=CARD_WAIT_S
    )
    captured = capsys.readouterr()
    assert code == validator_cli.EXIT_NO_CARD
    assert f"no card was presented within {CARD_WAIT_S} s" in captured.err
    assert "uploaded 0 taps" in captured.out
    device.close()


def test_taps_left_in_the_outbox_outrank_a_card_that_never_came() -> None:
    pending = Drained(acknowledged=0, pending=2, last_error=None)
    held = Drained(acknowledged=1, pending=0, last_error=None, held=1)
    delivered = Drained(acknowledged=1, pending=0, last_error=None)
    assert validator_cli.once_exit_code(pending, no_card=True) == validator_cli.EXIT_TAPS_PENDING
    assert validator_cli.once_exit_code(held, no_card=False) == validator_cli.EXIT_TAPS_PENDING
    assert validator_cli.once_exit_code(delivered, no_card=True) == validator_cli.EXIT_NO_CARD
    assert validator_cli.once_exit_code(delivered, no_card=False) == validator_cli.EXIT_OK


def test_once_in_json_prints_each_decision_then_the_backends_verdict_per_uploaded_tap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = FakeBackend(refused_reasons={2: "bad_device_signature"})
    printer, out = json_printer()
    device = device_for(backend, tmp_path, printer)
    rider = phone("lan")
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{rider.code(NOW)}\nTL1:garbage\n"))
    code = run_once(device, None, printer, qr_stdin=True)
    assert code == validator_cli.EXIT_OK
    decisions, verdicts, (summary,) = (
        [o for o in objects(out) if o["type"] == kind]
        for kind in ("decision", "verdict", "summary")
    )
    assert decisions == [
        {
            "type": "decision",
            "medium": "qr",
            "decision": "accepted",
            "reason": "accepted",
            "seq": 1,
            "charged_vnd": 0,
        },
        {
            "type": "decision",
            "medium": "qr",
            "decision": "refused",
            "reason": "malformed",
            "seq": 2,
            "charged_vnd": 0,
        },
    ]
    assert verdicts == [
        {
            "type": "verdict",
            "seq": 1,
            "epoch": 0,
            "status": "accepted",
            "reason": None,
            "tap_id": backend.tap_id(0, 1),
        },
        {
            "type": "verdict",
            "seq": 2,
            "epoch": 0,
            "status": "refused",
            "reason": "bad_device_signature",
            "tap_id": backend.tap_id(0, 2),
        },
    ]
    assert (summary["uploaded"], summary["exit_code"]) == (2, validator_cli.EXIT_OK)
    device.close()


def test_json_output_holds_nothing_but_json_objects_even_when_the_backend_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = FakeBackend()
    printer, out = json_printer()
    device = device_for(backend, tmp_path, printer)
    backend.failures_to_come = 10
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{phone('minh').code(NOW)}\n"))
    code = run_once(device, None, printer, qr_stdin=True)
    assert code == validator_cli.EXIT_TAPS_PENDING
    assert [o["type"] for o in objects(out)] == ["decision", "summary"]
    assert objects(out)[-1]["pending"] == 1
    device.close()


def test_text_mode_shows_the_backends_refusals_only(tmp_path: Path) -> None:
    out = io.StringIO()
    printer = TapPrinter(plain=True, out=out)
    backend = FakeBackend(refused_reasons={1: "card_denied"})
    device = device_for(backend, tmp_path, printer)
    device.gate.present_qr(phone("an").code(NOW))
    device.gate.present_qr(phone("binh").code(NOW))
    device.drain(attempts_max=1)
    assert out.getvalue().splitlines() == ["BACKEND REFUSED card_denied · seq 1"]
    device.close()


def test_a_sealed_sam_key_file_given_to_a_validator_is_refused_saying_its_form(
    tmp_path: Path,
) -> None:
    sealed = tmp_path / "sam.sealed"
    sealed.write_bytes(seal_key_file(b'{"3": "' + b"00" * 16 + b'"}', kek=bytes(32)))
    (tmp_path / "device.token").write_text("tlk_device_token\n")
    result = CliRunner().invoke(
        app,
        [
            *("validator", "run", "--server", "http://127.0.0.1:9", "--validator-id", "7"),
            *("--token-file", str(tmp_path / "device.token"), "--state-dir", str(tmp_path / "s")),
            *("--reader", "Virtual PCD", "--sam-key-file", str(sealed), "--once"),
        ],
    )
    assert result.exit_code == validator_cli.EXIT_BAD_INPUT, result.output
    assert "is a sealed key file; this reader takes the plain JSON form" in result.output


def test_a_running_devices_upload_step_reports_the_backends_answers_with_the_batchs_epoch(
    tmp_path: Path,
) -> None:
    reported: list[tuple[int, list[tuple[int, str]]]] = []
    device = Device(
        FakeBackend(),
        tmp_path,
        validator_id=1,
        sync_interval_s=60,
        clock=SecondsClock(NOW),
        on_answers=lambda epoch, answers: reported.append(
            (epoch, [(a.seq, a.status) for a in answers])
        ),
    )
    device.gate.present_qr(phone("thu").code(NOW))
    device.gate.present_qr("TL1:garbage")
    device.step()
    assert reported == [(0, [(1, "accepted"), (2, "accepted")])]
    device.close()
