"""The demo's live fleet scene on its own: when it fails half way, or the demo is terminated,
no device process outlives it."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from tapledger import demo_fleet_scene
from tapledger.demo_fleet import fleet_scene
from tapledger.device_processes import DeviceFailed, DeviceFleet, DeviceProcess

# The devices stop within their own bound (10 s each, side by side), then the backend.
DEMO_STOP_TIMEOUT_S = 30.0


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


def test_a_demo_terminated_while_its_devices_run_stops_them_before_it_exits(
    tmp_path: Path,
) -> None:
    script = (
        "import sys; from pathlib import Path; from rich.console import Console;"
        " from tapledger.demo_fleet import fleet_scene;"
        " fleet_scene(Console(width=400, force_terminal=False), Path(sys.argv[1]))"
    )
    demo = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "fleet")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    pids: list[int] = []
    try:
        for line in demo.stdout:
            if "processes synced and running" in line:
                pids = [int(pid) for pid in re.findall(r"\(pid (\d+)\)", line)]
                break
        assert len(pids) == len(demo_fleet_scene.PLACES)
        demo.terminate()
        demo.wait(DEMO_STOP_TIMEOUT_S)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(DEMO_STOP_TIMEOUT_S)
        demo.stdout.close()
    assert [_running(pid) for pid in pids] == [False] * len(pids)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # Not ours to reap any more: a zombie left for init counts as stopped.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()
