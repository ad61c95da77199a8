"""A bus validator names the stop the bus is at with each tap, read from the file the driver's
console or GPS unit keeps (`validators.bus_stop`); with no usable file the tap names none."""

from __future__ import annotations

import os
from pathlib import Path

from tests.doubles import SecondsClock
from tests.validator_fakes import NOW, FakeBackend, phone
from validators.bus_stop import STOP_FILE_BYTES_MAX, StopFile
from validators.device import Device

SYNC_INTERVAL_S = 60


def write_stop(path: Path, text: str) -> None:
    """As the console does: a whole new file renamed over the old one."""
    fresh = path.with_suffix(".new")
    fresh.write_text(text)
    os.replace(fresh, path)


def stop_file(path: Path) -> tuple[StopFile, list[str]]:
    errors: list[str] = []
    return StopFile(path, on_error=errors.append), errors


def test_the_stop_file_names_the_stop_and_follows_each_change(tmp_path: Path) -> None:
    path = tmp_path / "stop"
    stop, errors = stop_file(path)
    assert stop() is None  # no file yet: the registration's stop stands
    write_stop(path, "bus-cau-giay\n")
    assert stop() == "bus-cau-giay"
    write_stop(path, "bus-nhon")
    assert stop() == "bus-nhon"
    path.unlink()
    assert stop() is None
    assert errors == []


def test_an_empty_stop_file_names_no_stop_and_is_no_error(tmp_path: Path) -> None:
    path = tmp_path / "stop"
    write_stop(path, "  \n")
    stop, errors = stop_file(path)
    assert (stop(), errors) == (None, [])


def test_a_stop_file_holding_no_stop_id_names_none_and_says_so_once(tmp_path: Path) -> None:
    path = tmp_path / "stop"
    write_stop(path, "bus kim ma")
    stop, errors = stop_file(path)
    assert stop() is None
    assert stop() is None  # unchanged: not read, nor reported, again
    [error] = errors
    assert "holds no stop id" in error
    write_stop(path, "x" * (STOP_FILE_BYTES_MAX + 10))
    assert stop() is None
    assert len(errors) == 2


def test_each_bus_tap_is_uploaded_with_the_stop_the_bus_was_at(tmp_path: Path) -> None:
    path = tmp_path / "stop"
    backend, clock = FakeBackend(), SecondsClock()
    bus = Device(
        backend,
        tmp_path / "state",
        validator_id=backend.validator_id,
        sync_interval_s=SYNC_INTERVAL_S,
        clock=clock,
        stop=StopFile(path, on_error=lambda _message: None),
    )
    assert bus.sync()
    rider = phone("lan")
    bus.gate.present_qr(rider.code(NOW - 1))  # before the console wrote a stop
    write_stop(path, "bus-cau-giay")
    bus.gate.present_qr(rider.code(NOW - 1))
    write_stop(path, "bus-nhon")
    bus.gate.present_qr(rider.code(NOW - 1))
    bus.drain(sleep=lambda _s: None)
    assert [backend.recorded[seq].get("stop_id") for seq in (1, 2, 3)] == [
        None,
        "bus-cau-giay",
        "bus-nhon",
    ]
    assert "stop_id" not in backend.recorded[1]  # a tap naming no stop uploads as before
