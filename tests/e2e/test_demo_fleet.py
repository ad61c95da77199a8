"""The demo's live fleet scene on its own: when it fails half way, no device process outlives it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from tapledger import demo_fleet_scene
from tapledger.demo_fleet import fleet_scene
from tapledger.device_processes import DeviceFailed, DeviceFleet, DeviceProcess


def test_a_fleet_scene_failing_half_way_says_so_and_stops_every_device_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[DeviceProcess] = []
    start = DeviceFleet.start

    def recording_start(
        fleet: DeviceFleet, name: str, server_url: str, state_dir: Path, *extra: str
    ) -> DeviceProcess:
        device = start(fleet, name, server_url, state_dir, *extra)
        started.append(device)
        return device

    def gate_lost(*_: object) -> bool:
        raise DeviceFailed("the entry gate fell off the wall")

    monkeypatch.setattr(DeviceFleet, "start", recording_start)
    monkeypatch.setattr(demo_fleet_scene.FleetScene, "_offline", gate_lost)
    out = io.StringIO()

    assert not fleet_scene(Console(file=out, width=160), tmp_path / "fleet")

    assert "the fleet scene failed: the entry gate fell off the wall" in out.getvalue()
    assert len(started) == len(demo_fleet_scene.PLACES)
    assert [device.process.poll() for device in started] == [0, 0, 0]  # stopped on SIGTERM
