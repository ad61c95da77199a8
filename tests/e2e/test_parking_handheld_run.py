"""`tapledger validator run --kind parking-handheld` (a subprocess) against the real app served
by uvicorn: an attendant starts and ends sessions from a terminal; actions typed while the
backend is gone wait in the outbox for the next run, and every first answer lost on the way back
(the lossy proxy) is retried with the same id: one session per start, one end per end."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import free_port, server_env, tapledger_command
from tests.e2e.in_process_server import served_locally
from tests.e2e.lossy_proxy import lossy_proxy
from tests.e2e.riders import ADMIN, rider_with_phone
from tests.e2e.test_http_parking import FUNDS_VND, HOUR_VND, LOT, LOT_BODY, OPERATOR

HANDHELD = 41
RUN_TIMEOUT_S = 120.0
EXIT_ACTIONS_PENDING = 3
FOLLOWER_WAIT_S = 15.0
FOLLOWER_POLL_S = 0.2
FIRST_PLATE = "29A-123.45"
SECOND_PLATE = "30E-678.90"


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    with served_locally(tmp_path / "var", name="handheld-run-server") as base_url:
        yield base_url


def run_handheld(
    server_url: str, token_file: Path, state_dir: Path, lines: list[str]
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    command = [
        *tapledger_command(),
        *("validator", "run", "--kind", "parking-handheld", "--server", server_url),
        *("--validator-id", str(HANDHELD), "--lot-id", LOT, "--token-file", str(token_file)),
        *("--state-dir", str(state_dir), "--json", "--upload-attempts", "2"),
    ]
    done = subprocess.run(
        command,
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=server_env({}),
        check=False,
    )
    return done, [json.loads(line) for line in done.stdout.splitlines()]


def attendant_at_a_lot(client: httpx.Client, tmp_path: Path) -> Path:
    operator = {"operator_id": OPERATOR, "name": "Test parking"}
    assert client.post("/v1/parking/operators", json=operator, headers=ADMIN).status_code == 201
    created = client.post("/v1/parking/lots", json=LOT_BODY, headers=ADMIN)
    assert created.status_code == 201, created.text
    issued = client.post("/v1/tokens", json={"role": "operator"}, headers=ADMIN)
    assert issued.status_code == 201, issued.text
    token_file = tmp_path / "handheld.token"
    token_file.write_text(issued.json()["token"] + "\n")
    return token_file


def balances(client: httpx.Client, account_id: str) -> tuple[int, int]:
    account = client.get(f"/v1/accounts/{account_id}", headers=ADMIN).json()
    return account["posted_vnd"], account["pending_vnd"]


def lot_sessions(client: httpx.Client, expected: int) -> list[dict[str, Any]]:
    """The lot's sessions once the follower has caught up with `expected` of them."""
    deadline = time.monotonic() + FOLLOWER_WAIT_S
    while True:
        page = client.get(f"/v1/parking/sessions?lot_id={LOT}", headers=ADMIN)
        items: list[dict[str, Any]] = page.json()["items"]
        if len(items) >= expected or time.monotonic() > deadline:
            return items
        time.sleep(FOLLOWER_POLL_S)


def test_the_handheld_applies_each_action_once_across_an_outage_and_lost_answers(
    server_url: str, tmp_path: Path
) -> None:
    client = httpx.Client(base_url=server_url, timeout=10.0)
    token_file = attendant_at_a_lot(client, tmp_path)
    account_id, phone = rider_with_phone(client)
    top_up = {"amount_vnd": FUNDS_VND, "payment_reference": f"pay-{account_id}"}
    assert client.post(f"/v1/accounts/{account_id}/top-ups", json=top_up, headers=ADMIN).is_success
    state_dir = tmp_path / "handheld"

    dead = f"http://127.0.0.1:{free_port()}"
    offline, printed = run_handheld(
        dead,
        token_file,
        state_dir,
        [f"start {FIRST_PLATE} car 2 {phone.code(int(time.time()), 1)}"],
    )
    assert offline.returncode == EXIT_ACTIONS_PENDING, offline.stdout + offline.stderr
    assert [(p["seq"], p["status"], p["request_id"]) for p in printed] == [
        (1, "queued", f"handheld-{HANDHELD}-1")
    ]

    with lossy_proxy(server_url) as proxy:
        back, printed = run_handheld(
            proxy.url,
            token_file,
            state_dir,
            [
                phone.code(int(time.time()), 2),  # scanned alone: the next start pays with it
                f"start {SECOND_PLATE} car 2",
                f"end {FIRST_PLATE}",
                f"check {FIRST_PLATE}",
            ],
        )
    assert back.returncode == 0, back.stdout + back.stderr
    assert [(p.get("seq"), p["status"]) for p in printed] == [
        (1, "started"),  # queued by the first run; its first answer here was lost
        (2, "queued"),
        (2, "started"),
        (3, "queued"),
        (3, "ended"),
        (None, "unpaid"),
    ], back.stdout
    # Each creating request reached the server twice, and only its second answer came back.
    assert len(proxy.lost) == 3
    assert sorted(proxy.forwarded).count("POST /v1/parking/sessions") == 2 * 2

    first, second, ended = printed[0]["session"], printed[2]["session"], printed[4]
    assert ended["session"]["session_id"] == first["session_id"]
    assert (ended["record"]["fee_vnd"], ended["record"]["ended_by"]) == (HOUR_VND, "attendant")
    sessions = lot_sessions(client, 2)
    states = {s["session_id"]: s["state"] for s in sessions}
    assert states.keys() == {first["session_id"], second["session_id"]}  # one per start
    assert states[first["session_id"]] in ("ended", "settled")
    assert states[second["session_id"]] == "open"
    assert {s["started_by"] for s in sessions} == {"attendant"}
    assert balances(client, account_id) == (FUNDS_VND - HOUR_VND, 2 * HOUR_VND)
