"""A bus validator process names the stop the bus is at with each tap (`--stop-file`, kept by
the driver's console or GPS unit), and the backend's journey goes from the stop of the boarding
tap to the stop of the alighting one, not from the stop the validator was registered at."""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import server_env, tapledger_command
from tests.e2e.in_process_server import served_locally
from tests.e2e.riders import ADMIN
from tests.tap_media import Phone

BUS = 3201
RUN_TIMEOUT_S = 120.0
JOURNEY_WAIT_S = 30.0
POLL_S = 0.2


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    with served_locally(tmp_path / "var", name="bus-stops-server") as base_url:
        yield base_url


def registered_bus(client: httpx.Client, tmp_path: Path) -> tuple[Path, str, Phone]:
    """A bus validator of route 01 registered at Kim Mã, its token in a file, and a rider."""
    registered = client.post(
        "/v1/validators",
        json={
            "validator_id": BUS,
            "kind": "bus",
            "network_id": 1,
            "location": BUS,
            "stop_id": "bus-kim-ma",
            "route_id": "01",
        },
        headers=ADMIN,
    )
    assert registered.status_code == 201, registered.text
    token_file = tmp_path / "bus.token"
    token_file.write_text(registered.json()["token"] + "\n")
    account_id = client.post("/v1/accounts", json={}, headers=ADMIN).json()["id"]
    topped = client.post(
        f"/v1/accounts/{account_id}/top-ups",
        json={"amount_vnd": 100_000, "payment_reference": "bus-stops-seed"},
        headers=ADMIN,
    )
    assert topped.status_code == 201, topped.text
    phone = Phone.new()
    card = client.post(
        f"/v1/accounts/{account_id}/virtual-cards",
        json={"device_key": base64.b64encode(phone.public_key()).decode()},
        headers=ADMIN,
    )
    assert card.status_code == 201, card.text
    phone.certify(card.json()["certificate"])
    return token_file, account_id, phone


def tap_at_stop(
    server_url: str, token_file: Path, state_dir: Path, stop_file: Path, stop: str, code: str
) -> None:
    """The console says where the bus is, then a rider taps; the run uploads and exits."""
    fresh = stop_file.with_suffix(".new")
    fresh.write_text(stop + "\n")
    os.replace(fresh, stop_file)
    command = [
        *tapledger_command(),
        *("validator", "run", "--server", server_url, "--validator-id", str(BUS)),
        *("--token-file", str(token_file), "--state-dir", str(state_dir)),
        *("--stop-file", str(stop_file), "--qr-stdin", "--once", "--plain"),
    ]
    run = subprocess.run(
        command,
        input=code + "\n",
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=server_env({}),
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("ACCEPTED qr accepted"), run.stdout


def ended_journey(client: httpx.Client, account_id: str) -> dict[str, Any]:
    """The account's journey once the followers have ended it (waited for, bounded)."""
    deadline = time.monotonic() + JOURNEY_WAIT_S
    while True:
        listed = client.get("/v1/journeys", params={"account_id": account_id}, headers=ADMIN)
        assert listed.status_code == 200, listed.text
        journeys: list[dict[str, Any]] = listed.json()
        if journeys and journeys[0]["legs"][0].get("to_stop_id"):
            return journeys[0]
        assert time.monotonic() < deadline, (
            f"no journey ended within {JOURNEY_WAIT_S} s: {journeys}"
        )
        time.sleep(POLL_S)


def test_a_bus_validator_process_taps_at_the_stops_its_console_names(
    server_url: str, tmp_path: Path
) -> None:
    client = httpx.Client(base_url=server_url, timeout=10.0)
    token_file, account_id, phone = registered_bus(client, tmp_path)
    state_dir, stop_file = tmp_path / "bus", tmp_path / "current-stop"
    now = int(time.time())
    tap_at_stop(server_url, token_file, state_dir, stop_file, "bus-cau-giay", phone.code(now, 1))
    tap_at_stop(server_url, token_file, state_dir, stop_file, "bus-nhon", phone.code(now + 1, 2))
    journey = ended_journey(client, account_id)
    [leg] = journey["legs"]
    assert (leg["route_id"], leg["from_stop_id"], leg["to_stop_id"]) == (
        "01",
        "bus-cau-giay",
        "bus-nhon",
    )
