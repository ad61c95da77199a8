"""`tapledger rider` against a real server in this process: the codes it prints pass the real
verifier with the issuer keys the server publishes.

The server is the product's app on the embedded SQLite store, served by uvicorn in a thread, so
the test needs no PostgreSQL or Redis. Followers are off; the test catches the read models up
itself before it reads a statement.
"""

from __future__ import annotations

import json
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner, Result

from tapledger.bootstrap import Container, bootstrap
from tapledger.cli import app
from tapledger.http.app import create_app
from tapledger.rider.keystore import KEY_FILE_NAME, STATE_FILE_NAME
from tapledger.settings import LOCAL_ADMIN_TOKEN
from tests.builders.settings import ExplicitSettings
from ticketing.tl1.certificate_cache import CertificateCache
from ticketing.tl1.keyset import IssuerKeySet
from ticketing.tl1.layout import Code
from ticketing.tl1.qr_image import HALF_BLOCKS
from ticketing.tl1.replay import ReplayWindow
from ticketing.tl1.verify import Verifier

SERVER_START_TIMEOUT_S = 15.0
SERVER_STOP_TIMEOUT_S = 10.0
SERVER_POLL_S = 0.05
REQUEST_TIMEOUT_S = 10.0
TOKEN_ENV_VAR = "TAPLEDGER_RIDER_TOKEN"
TOP_UP_VND = 50_000
CODE_PREFIX = "TL1:"
OWNER_ONLY_MODE = 0o600


@dataclass
class LiveServer:
    base_url: str
    container: Container
    admin: httpx.Client

    def open_rider(self) -> tuple[str, str]:
        """A new account with a top-up, and a rider token for it."""
        opened = self.admin.post("/v1/accounts", json={"display_name": "Nguyen Thi Lan"})
        assert opened.status_code == httpx.codes.CREATED, opened.text
        account_id: str = opened.json()["id"]
        topped = self.admin.post(
            f"/v1/accounts/{account_id}/top-ups",
            json={"amount_vnd": TOP_UP_VND, "payment_reference": f"momo-{account_id[:8]}"},
        )
        assert topped.status_code == httpx.codes.CREATED, topped.text
        issued = self.admin.post("/v1/tokens", json={"role": "rider", "account_id": account_id})
        assert issued.status_code == httpx.codes.CREATED, issued.text
        token: str = issued.json()["token"]
        return account_id, token

    def verifier(self) -> Verifier:
        """A validator trusting the issuer keys the server publishes now."""
        response = self.admin.get("/v1/issuer-keys")
        assert response.status_code == httpx.codes.OK, response.text
        body = response.json()
        keys = IssuerKeySet.from_bytes(
            {key["key_id"]: key["public_key"] for key in body["keys"]},
            revoked=body["revoked"],
            version=body["version"],
        )
        return Verifier(
            keys, set(), replay_window=ReplayWindow(), certificate_cache=CertificateCache()
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = ExplicitSettings(
        environment="local",
        data_dir=tmp_path_factory.mktemp("rider-server"),
        follow_in_process=False,
    )
    container = bootstrap(settings)
    config = uvicorn.Config(
        create_app(container), host="127.0.0.1", port=0, log_config=None, access_log=False
    )
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, name="rider-e2e-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not uvicorn_server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the in-process server did not start", pytrace=False)
            time.sleep(SERVER_POLL_S)
        # Port 0 lets the OS choose a free port with no race; read back which one it chose.
        port = uvicorn_server.servers[0].sockets[0].getsockname()[1]
        base_url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {LOCAL_ADMIN_TOKEN}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=REQUEST_TIMEOUT_S) as admin:
            yield LiveServer(base_url, container, admin)
    finally:
        uvicorn_server.should_exit = True
        thread.join(SERVER_STOP_TIMEOUT_S)
    assert not thread.is_alive(), "the in-process server did not stop"


def rider(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, ["rider", *args], env=env)


def succeeded(result: Result) -> str:
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.stdout


def codes_in(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(CODE_PREFIX)]


def accepted_now(verifier: Verifier, text: str) -> Code:
    verification = verifier.verify(text, now=int(time.time()))
    assert verification.decision == "accepted"
    assert verification.code is not None
    return verification.code


def register(server: LiveServer, home: Path) -> str:
    account_id, token = server.open_rider()
    succeeded(rider("register", "--api", server.base_url, "--home", str(home), "--token", token))
    return account_id


def test_registered_rider_prints_codes_the_validator_accepts(
    server: LiveServer, tmp_path: Path
) -> None:
    home = tmp_path / "phone"
    register(server, home)
    verifier = server.verifier()
    (first,) = codes_in(succeeded(rider("code", "--text-only", "--home", str(home))))
    (second,) = codes_in(succeeded(rider("code", "--text-only", "--home", str(home))))
    first_code, second_code = accepted_now(verifier, first), accepted_now(verifier, second)
    assert first_code.counter != second_code.counter
    assert first_code.certificate.card_id == second_code.certificate.card_id


def test_register_reads_the_token_from_the_environment_and_keeps_it_private(
    server: LiveServer, tmp_path: Path
) -> None:
    home = tmp_path / "phone"
    account_id, token = server.open_rider()
    output = succeeded(
        rider("register", "--api", server.base_url, "--home", str(home), env={TOKEN_ENV_VAR: token})
    )
    assert "registered virtual card" in output
    assert token not in output
    for name in (KEY_FILE_NAME, STATE_FILE_NAME):
        assert stat.S_IMODE((home / name).stat().st_mode) == OWNER_ONLY_MODE
    state = json.loads((home / STATE_FILE_NAME).read_text())
    assert (state["account_id"], state["token"]) == (account_id, token)
    # Registering again, with the stored token and URL, keeps the same card.
    again = succeeded(rider("register", "--home", str(home)))
    assert f"already registered: virtual card {state['card_id']}" in again


def test_register_with_a_wrong_token_fails_and_stores_nothing(
    server: LiveServer, tmp_path: Path
) -> None:
    home = tmp_path / "phone"
    result = rider("register", "--api", server.base_url, "--home", str(home), "--token", "nope")
    assert result.exit_code == 1
    assert "not_authenticated" in result.stderr
    assert not (home / STATE_FILE_NAME).exists()


@pytest.mark.parametrize("api_url", ["ftp://api.test", "api.test", "http://"])
def test_register_refuses_an_api_url_that_is_not_http(tmp_path: Path, api_url: str) -> None:
    home = tmp_path / "phone"
    result = rider("register", "--api", api_url, "--token", "tok", "--home", str(home))
    assert result.exit_code == 1
    assert "bad_api_url" in result.stderr
    assert not (home / STATE_FILE_NAME).exists()


def test_code_before_register_fails_with_a_message(tmp_path: Path) -> None:
    result = rider("code", "--home", str(tmp_path / "phone"))
    assert result.exit_code == 1
    assert "not_registered" in result.stderr
    assert codes_in(result.stdout) == []


def test_code_with_qr_draws_half_blocks_below_the_text(server: LiveServer, tmp_path: Path) -> None:
    home = tmp_path / "phone"
    register(server, home)
    output = succeeded(rider("code", "--home", str(home)))
    (text,) = codes_in(output)
    accepted_now(server.verifier(), text)
    qr = output.split(text, 1)[1]
    assert HALF_BLOCKS[(True, False)] in qr
    assert HALF_BLOCKS[(False, True)] in qr
    assert HALF_BLOCKS[(True, True)] in qr


def test_show_prints_a_fresh_accepted_code_each_time(server: LiveServer, tmp_path: Path) -> None:
    home = tmp_path / "phone"
    register(server, home)
    output = succeeded(rider("show", "--home", str(home), "--count", "2", "--interval-s", "1"))
    verifier = server.verifier()
    counters = [accepted_now(verifier, text).counter for text in codes_in(output)]
    assert len(counters) == len(set(counters)) == 2
    assert "code 2 of 2" in output


@pytest.mark.parametrize(
    "option",
    [("--count", "0"), ("--count", "1001"), ("--interval-s", "0.5"), ("--interval-s", "51")],
)
def test_show_refuses_counts_and_intervals_out_of_bounds(
    tmp_path: Path, option: tuple[str, str]
) -> None:
    result = rider("show", "--home", str(tmp_path), *option)
    assert result.exit_code == 2, result.output
    assert codes_in(result.output) == []


def test_status_shows_the_balance_and_the_top_up(server: LiveServer, tmp_path: Path) -> None:
    home = tmp_path / "phone"
    account_id = register(server, home)
    server.container.catch_up()
    output = succeeded(rider("status", "--home", str(home)))
    balance, activity = output.split("recent activity", 1)
    assert account_id in balance
    assert f"{TOP_UP_VND:,}" in balance
    assert f"+{TOP_UP_VND:,}" in activity
