"""`tapledger validator run` (a subprocess) against the real app served by uvicorn.

With `--once` the device syncs, decides QR codes from stdin offline, and uploads; a run with the
backend gone keeps its taps in the outbox (exit 3) and the next run delivers them, each recorded
once. Without it the device keeps running: it uploads each tap in the background while it waits
for the next, and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import base64
import json
import queue
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.e2e.conftest import free_port, server_env, tapledger_command
from tests.e2e.in_process_server import served_locally
from tests.e2e.riders import ADMIN
from tests.tap_media import Phone
from ticketing.taps.domain.tap import tap_id
from validators.device import OUTBOX_FILE
from validators.outbox import Outbox

GATE = 3101
RUN_TIMEOUT_S = 120.0
FOLLOWER_WAIT_S = 15.0
FOLLOWER_POLL_S = 0.2
EXIT_TAPS_PENDING = 3
LINE_WAIT_S = 30.0
STOP_WAIT_S = 30.0


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    """The app on SQLite in local mode, served by uvicorn in a thread."""
    with served_locally(tmp_path / "var", name="validator-run-server") as base_url:
        yield base_url


def run_validator(
    server_url: str,
    token_file: Path,
    state_dir: Path,
    codes: list[str],
    output: str = "--plain",
) -> subprocess.CompletedProcess[str]:
    command = [
        *tapledger_command(),
        *("validator", "run", "--server", server_url, "--validator-id", str(GATE)),
        *("--token-file", str(token_file), "--state-dir", str(state_dir)),
        *("--qr-stdin", "--once", output),
    ]
    return subprocess.run(
        command,
        input="".join(f"{code}\n" for code in codes),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=server_env({}),
        check=False,
    )


def sequence_when_recorded(client: httpx.Client, taps: int) -> dict[str, object]:
    deadline = time.monotonic() + FOLLOWER_WAIT_S
    while True:
        report: dict[str, object] = client.get(f"/v1/validators/{GATE}", headers=ADMIN).json()[
            "sequence"
        ]
        if report["taps_recorded"] == taps or time.monotonic() > deadline:
            return report
        time.sleep(FOLLOWER_POLL_S)


def registered_gate(client: httpx.Client, tmp_path: Path) -> tuple[Path, Phone]:
    """The gate registered, its token in a file, and a rider's phone with a virtual card."""
    registered = client.post(
        "/v1/validators",
        json={
            "validator_id": GATE,
            "kind": "metro_gate",
            "network_id": 2,
            "location": GATE,
            "stop_id": "2A-01",
            "route_id": "2A",
            "direction": "entry",
        },
        headers=ADMIN,
    )
    assert registered.status_code == 201, registered.text
    token_file = tmp_path / "device.token"
    token_file.write_text(registered.json()["token"] + "\n")
    account_id = client.post("/v1/accounts", json={}, headers=ADMIN).json()["id"]
    phone = Phone.new()
    card = client.post(
        f"/v1/accounts/{account_id}/virtual-cards",
        json={"device_key": base64.b64encode(phone.public_key()).decode()},
        headers=ADMIN,
    )
    assert card.status_code == 201, card.text
    phone.certify(card.json()["certificate"])
    return token_file, phone


def test_validator_run_once_decides_offline_and_its_taps_end_recorded_on_the_server(
    server_url: str, tmp_path: Path
) -> None:
    client = httpx.Client(base_url=server_url, timeout=10.0)
    token_file, phone = registered_gate(client, tmp_path)
    state_dir = tmp_path / "gate"
    now = int(time.time())
    first_code = phone.code(now - 1, 1)

    online = run_validator(server_url, token_file, state_dir, [first_code, "TL1:garbage"])
    assert online.returncode == 0, online.stdout + online.stderr
    lines = online.stdout.splitlines()
    assert lines[:2] == [
        "ACCEPTED qr accepted · seq 1",
        "REFUSED qr malformed · seq 2",
    ], online.stdout
    assert "uploaded 2 taps; 0 pending" in online.stdout

    dead = f"http://127.0.0.1:{free_port()}"
    offline = run_validator(dead, token_file, state_dir, [phone.code(now, 2), first_code])
    assert offline.returncode == EXIT_TAPS_PENDING, offline.stdout + offline.stderr
    assert offline.stdout.splitlines()[:2] == [
        "ACCEPTED qr accepted · seq 3",  # decided with the keys kept from the first run
        "REFUSED qr code_replayed · seq 4",  # the replay window survived the restart
    ], offline.stdout
    assert "2 pending" in offline.stdout

    # As if the first run had died before storing the backend's answer for its two taps.
    with sqlite3.connect(state_dir / OUTBOX_FILE) as db:
        db.execute("UPDATE taps SET acked_at = NULL, backend_status = NULL WHERE seq <= 2")

    back = run_validator(server_url, token_file, state_dir, [])
    assert back.returncode == 0, back.stdout + back.stderr
    assert "uploaded 4 taps; 0 pending; last seq 4" in back.stdout
    outbox = Outbox(state_dir / OUTBOX_FILE)
    answers = [
        (t.seq, t.backend_status, t.backend_reason) for t in map(outbox.get, range(1, 5)) if t
    ]
    outbox.close()
    assert answers == [
        (1, "duplicate", None),
        (2, "duplicate", None),
        (3, "accepted", None),
        # The gate refused the replay itself, and so does the backend: the first sighting used
        # the code up. The tap is recorded with its reason.
        (4, "refused", "code_replayed"),
    ]
    report = sequence_when_recorded(client, 4)
    assert (report["highest_seq"], report["taps_recorded"], report["missing_count"]) == (4, 4, 0)


def test_validator_run_json_prints_decisions_and_the_servers_verdict_with_each_taps_id(
    server_url: str, tmp_path: Path
) -> None:
    client = httpx.Client(base_url=server_url, timeout=10.0)
    token_file, phone = registered_gate(client, tmp_path)
    code = phone.code(int(time.time()) - 1, 1)
    run = run_validator(server_url, token_file, tmp_path / "gate", [code, "TL1:garbage"], "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    printed = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(o["type"], o.get("seq")) for o in printed] == [
        ("decision", 1),
        ("decision", 2),
        ("verdict", 1),
        ("verdict", 2),
        ("summary", None),
    ], run.stdout
    assert [(o["decision"], o["reason"]) for o in printed[:2]] == [
        ("accepted", "accepted"),
        ("refused", "malformed"),
    ]
    assert printed[2:4] == [
        {
            "type": "verdict",
            "seq": 1,
            "epoch": 0,
            "status": "accepted",
            "reason": None,
            "tap_id": str(tap_id(GATE, 1)),
        },
        {
            "type": "verdict",
            "seq": 2,
            "epoch": 0,
            "status": "refused",
            "reason": "malformed",
            "tap_id": str(tap_id(GATE, 2)),
        },
    ]
    assert printed[-1] == {
        "type": "summary",
        "uploaded": 2,
        "pending": 0,
        "held": 0,
        "last_seq": 2,
        "exit_code": 0,
    }


def printed_lines(stdout: IO[str]) -> queue.Queue[str]:
    """The lines a process prints, read by a thread, so a test can wait for each with a limit."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def test_validator_run_uploads_while_running_and_stops_cleanly_on_sigterm(
    server_url: str, tmp_path: Path
) -> None:
    client = httpx.Client(base_url=server_url, timeout=10.0)
    token_file, phone = registered_gate(client, tmp_path)
    state_dir = tmp_path / "gate"
    command = [
        *tapledger_command(),
        *("validator", "run", "--server", server_url, "--validator-id", str(GATE)),
        *("--token-file", str(token_file), "--state-dir", str(state_dir)),
        *("--qr-stdin", "--plain"),
    ]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=server_env({}),
    )
    assert process.stdin is not None
    assert process.stdout is not None
    lines = printed_lines(process.stdout)
    try:
        assert lines.get(timeout=LINE_WAIT_S).strip() == "validator running; Ctrl-C to stop"
        process.stdin.write(phone.code(int(time.time()) - 1, 1) + "\n")
        process.stdin.flush()
        assert lines.get(timeout=LINE_WAIT_S).strip() == "ACCEPTED qr accepted · seq 1"
        # Still running, the device uploads the tap without being asked to.
        report = sequence_when_recorded(client, 1)
        assert (report["highest_seq"], report["taps_recorded"]) == (1, 1)
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        assert process.wait(STOP_WAIT_S) == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    outbox = Outbox(state_dir / OUTBOX_FILE)
    tap = outbox.get(1)
    outbox.close()
    assert tap is not None
    assert tap.backend_status == "accepted"
