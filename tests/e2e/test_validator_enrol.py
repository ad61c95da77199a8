"""`tapledger validator enrol` then `validator run` (subprocesses) against the app served by
uvicorn: the device takes its token from a one-time code, with nothing copied by hand, uploads
as itself, and once revoked is refused, with the refusal recorded and its taps kept."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import server_env, tapledger_command
from tests.e2e.in_process_server import served_locally
from tests.e2e.riders import ADMIN, rider_with_phone
from validators.enrolment import DEVICE_TOKEN_FILE

GATE = 3102
RUN_TIMEOUT_S = 120.0
FOLLOWER_WAIT_S = 15.0
FOLLOWER_POLL_S = 0.2
EXIT_REFUSED = 2
EXIT_TAPS_PENDING = 3


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    with served_locally(tmp_path / "var", name="validator-enrol-server") as base_url:
        yield base_url


def tapledger(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*tapledger_command(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=server_env({}),
        check=False,
    )


def registered_with_code(client: httpx.Client) -> str:
    body = {"validator_id": GATE, "kind": "metro_gate", "network_id": 2, "location": GATE}
    body |= {"stop_id": "2A-01", "route_id": "2A", "direction": "entry"}
    assert client.post("/v1/validators", json=body, headers=ADMIN).status_code == 201
    issued = client.post(f"/v1/validators/{GATE}/enrolment-codes", headers=ADMIN)
    assert issued.status_code == 201, issued.text
    code: str = issued.json()["code"]
    return code


def polled(client: httpx.Client, path: str, done: Any) -> Any:
    """The answer at `path` once `done(answer)` holds (the followers catch up in a moment)."""
    deadline = time.monotonic() + FOLLOWER_WAIT_S
    while True:
        answer = client.get(path, headers=ADMIN).json()
        if done(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(FOLLOWER_POLL_S)


def test_a_device_enrols_with_its_code_runs_and_uploads_then_once_revoked_is_refused(
    server_url: str, tmp_path: Path
) -> None:
    client = httpx.Client(base_url=server_url, timeout=10.0)
    code = registered_with_code(client)
    state_dir = tmp_path / "gate"

    enrolled = tapledger(
        *("validator", "enrol", "--backend", server_url, "--code", code),
        *("--state-dir", str(state_dir)),
    )
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
    assert f"enrolled as validator {GATE} in epoch 1" in enrolled.stdout
    assert (state_dir / DEVICE_TOKEN_FILE).stat().st_mode & 0o077 == 0  # the user's only

    _, phone = rider_with_phone(client)
    run = ("validator", "run", "--server", server_url, "--state-dir", str(state_dir))
    once = ("--qr-stdin", "--once", "--plain")
    first = tapledger(*run, *once, stdin=phone.code(int(time.time()) - 1, 1) + "\n")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "ACCEPTED qr accepted · seq 1" in first.stdout
    assert "uploaded 1 taps; 0 pending" in first.stdout
    report = polled(
        client, f"/v1/validators/{GATE}", lambda v: v["sequence"]["taps_recorded"] == 1
    )["sequence"]
    assert (report["epoch"], report["highest_seq"], report["missing_count"]) == (1, 1, 0)

    again = tapledger(
        *("validator", "enrol", "--server", server_url, "--code", code),
        *("--state-dir", str(tmp_path / "thief")),
    )
    assert again.returncode == EXIT_REFUSED, again.stdout + again.stderr
    assert "enrolment_code_used" in again.stderr

    assert client.post(f"/v1/validators/{GATE}/revoke", headers=ADMIN).status_code == 200
    revoked = tapledger(
        *run, *once, "--upload-attempts", "1", stdin=phone.code(int(time.time()), 2) + "\n"
    )
    assert revoked.returncode == EXIT_TAPS_PENDING, revoked.stdout + revoked.stderr
    assert "validator_revoked" in revoked.stderr
    assert "1 pending" in revoked.stdout  # the tap is kept for when a device may upload
    refusals = polled(client, f"/v1/device-refusals?validator_id={GATE}", lambda r: len(r) == 2)
    assert [(r["request"], r["reason"]) for r in refusals] == [
        ("upload", "validator_revoked"),
        ("enrolment", "enrolment_code_used"),
    ]
