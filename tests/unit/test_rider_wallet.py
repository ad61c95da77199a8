"""The rider's wallet over a fake backend and a fake clock: key file, state file, counters, renewal,
clock correction; and the HTTP client's typed errors over a mock transport."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tapledger.rider.api import RiderApi, RiderApiError
from tapledger.rider.errors import WalletError
from tapledger.rider.keystore import KEY_FILE_NAME, STATE_FILE_NAME, DeviceKeyStore
from tapledger.rider.port import AccountReply, CardReply, PrincipalReply, StatementLineReply
from tapledger.rider.wallet import RENEW_BEFORE_S, Wallet
from tests.doubles import SecondsClock
from ticketing.tl1.certificate_cache import CertificateCache
from ticketing.tl1.issuing import compress_p256, issue_certificate
from ticketing.tl1.keyset import IssuerKeySet
from ticketing.tl1.layout import Code, code_from_text, parse_code
from ticketing.tl1.replay import ReplayWindow
from ticketing.tl1.verify import Verifier

# A fixed moment on the phone's clock, 2025-06-01 08:00 in Hanoi, a quarter second into the
# second so that the server's whole-second `server_time` is a quarter second behind it.
PHONE_NOW_S = 1_748_739_600.25
ISSUER_KEY_ID = 7
CERTIFICATE_LIFETIME_S = 72 * 3600
CERTIFICATE_BACKDATE_S = 60
OWNER_ONLY_MODE = 0o600
GROUP_AND_OTHER_BITS = 0o077
U16_MAX = 0xFFFF
P256_SCALAR_HEX_CHARS = 64
API_URL = "https://api.test"


class FakeRiderApi:
    """The backend as the phone sees it: real certificates, a server clock `server_ahead_s`
    ahead of the phone's, and a record of every call."""

    def __init__(self, clock: SecondsClock, *, server_ahead_s: int = 0) -> None:
        self.clock = clock
        self.server_ahead_s = server_ahead_s
        self.issuer_key = Ed25519PrivateKey.generate()
        self.account_id = uuid4()
        self.device_keys: dict[UUID, bytes] = {}
        self.calls: list[str] = []

    def server_time(self) -> int:
        return int(self.clock() + self.server_ahead_s)

    def me(self) -> PrincipalReply:
        self.calls.append("me")
        return PrincipalReply(token_id="tok-1", role="rider", account_id=self.account_id)

    def issue_virtual_card(self, account_id: UUID, device_key: bytes) -> CardReply:
        self.calls.append("issue")
        assert account_id == self.account_id
        card_id = uuid4()
        self.device_keys[card_id] = device_key
        return self._card(card_id)

    def get_virtual_card(self, card_id: UUID) -> CardReply:
        self.calls.append("get")
        return self._card(card_id)

    def renew_virtual_card(self, card_id: UUID) -> CardReply:
        self.calls.append("renew")
        return self._card(card_id)

    def account(self, account_id: UUID) -> AccountReply:
        self.calls.append("account")
        return AccountReply(
            id=account_id, status="open", posted_vnd=50_000, pending_vnd=0, available_vnd=50_000
        )

    def statement(self, account_id: UUID, limit: int) -> list[StatementLineReply]:
        self.calls.append(f"statement {account_id} {limit}")
        return []

    def verifier(self) -> Verifier:
        keys = IssuerKeySet({ISSUER_KEY_ID: self.issuer_key.public_key()})
        return Verifier(
            keys, set(), replay_window=ReplayWindow(), certificate_cache=CertificateCache()
        )

    def _card(self, card_id: UUID) -> CardReply:
        now = self.server_time()
        not_before = now - CERTIFICATE_BACKDATE_S
        certificate = issue_certificate(
            self.issuer_key,
            issuer_key_id=ISSUER_KEY_ID,
            card_id=card_id,
            rider_category=0,
            flags=0,
            not_before=not_before,
            not_after=not_before + CERTIFICATE_LIFETIME_S,
            device_key=self.device_keys[card_id],
        )
        return CardReply(
            card_id=card_id,
            account_id=self.account_id,
            status="active",
            issuer_key_id=ISSUER_KEY_ID,
            certificate=base64.b64encode(certificate).decode(),
            not_before=not_before,
            not_after=not_before + CERTIFICATE_LIFETIME_S,
            server_time=now,
        )


def parsed(text: str) -> Code:
    return parse_code(code_from_text(text))


@pytest.fixture
def clock() -> SecondsClock:
    return SecondsClock(PHONE_NOW_S)


@pytest.fixture
def backend(clock: SecondsClock) -> FakeRiderApi:
    return FakeRiderApi(clock)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "rider"


def registered_wallet(home: Path, backend: FakeRiderApi, clock: SecondsClock) -> Wallet:
    wallet = Wallet(DeviceKeyStore(home), backend, clock=clock)
    assert wallet.register()
    return wallet


# The key file


def test_device_key_file_is_owner_only_and_reused_on_the_next_run(home: Path) -> None:
    first = DeviceKeyStore(home).public_key_sec1()
    key_path = home / KEY_FILE_NAME
    assert stat.S_IMODE(key_path.stat().st_mode) == OWNER_ONLY_MODE
    assert stat.S_IMODE(home.stat().st_mode) & GROUP_AND_OTHER_BITS == 0
    assert DeviceKeyStore(home).public_key_sec1() == first
    # Nothing but the key and the state is left behind: the temporary file was renamed.
    assert [path.name for path in home.iterdir()] == [KEY_FILE_NAME]


def test_a_key_file_that_is_not_a_key_is_a_typed_error(home: Path) -> None:
    home.mkdir()
    (home / KEY_FILE_NAME).write_text("not a key")
    with pytest.raises(WalletError) as raised:
        DeviceKeyStore(home).private_key()
    assert raised.value.code == "device_key_unreadable"


# The state file


def test_state_file_is_owner_only_and_never_holds_the_private_key(
    home: Path, backend: FakeRiderApi, clock: SecondsClock
) -> None:
    wallet = registered_wallet(home, backend, clock)
    wallet.code()
    state_path = home / STATE_FILE_NAME
    text = state_path.read_text()
    scalar_hex = format(
        wallet.store.private_key().private_numbers().private_value, f"0{P256_SCALAR_HEX_CHARS}x"
    )
    assert "PRIVATE KEY" not in text
    assert scalar_hex not in text.lower()
    assert stat.S_IMODE(state_path.stat().st_mode) == OWNER_ONLY_MODE
    assert json.loads(text)["card_id"] == str(wallet.state.card_id)


def test_an_unreadable_state_file_is_a_typed_error(home: Path, backend: FakeRiderApi) -> None:
    home.mkdir()
    (home / STATE_FILE_NAME).write_text('{"counter": "many"}')
    with pytest.raises(WalletError) as raised:
        Wallet(DeviceKeyStore(home), backend)
    assert raised.value.code == "state_unreadable"


# Registering


def test_register_issues_one_card_and_a_second_register_does_nothing(
    home: Path, backend: FakeRiderApi, clock: SecondsClock
) -> None:
    wallet = registered_wallet(home, backend, clock)
    assert not wallet.register()
    again = Wallet(DeviceKeyStore(home), backend, clock=clock)
    assert not again.register()
    assert backend.calls == ["me", "issue"]
    assert again.state.card_id == wallet.state.card_id


def test_register_fetches_a_lost_certificate_instead_of_issuing_a_new_card(
    home: Path, backend: FakeRiderApi, clock: SecondsClock
) -> None:
    wallet = registered_wallet(home, backend, clock)
    card_id = wallet.state.card_id
    wallet.state.certificate = None
    wallet.store.save_state(wallet.state)
    assert wallet.register()
    assert backend.calls == ["me", "issue", "get"]
    assert wallet.state.card_id == card_id
    assert wallet.registered


def test_register_issues_a_new_card_when_the_device_key_was_replaced(
    home: Path, backend: FakeRiderApi, clock: SecondsClock
) -> None:
    wallet = registered_wallet(home, backend, clock)
    old_card = wallet.state.card_id
    (home / KEY_FILE_NAME).unlink()
    replaced = Wallet(DeviceKeyStore(home), backend, clock=clock)
    assert not replaced.registered
    assert replaced.register()
    assert replaced.state.card_id != old_card
    assert backend.calls == ["me", "issue", "me", "issue"]


def test_a_code_before_registering_is_refused(home: Path, backend: FakeRiderApi) -> None:
    with pytest.raises(WalletError) as raised:
        Wallet(DeviceKeyStore(home), backend).code()
    assert raised.value.code == "not_registered"


# Codes


def test_codes_are_accepted_by_a_validator_trusting_the_issuer(
    home: Path, backend: FakeRiderApi, clock: SecondsClock
) -> None:
    wallet = registered_wallet(home, backend, clock)
    verifier = backend.verifier()
    first, second = wallet.code(), wallet.code()
    now = backend.server_time()
    assert verifier.verify(first, now).accepted
    assert verifier.verify(second, now).accepted
    assert not verifier.verify(first, now).accepted  # the same code shown twice is a replay


def test_counters_keep_increasing_across_a_restart(
    home: Path, backend: FakeRiderApi, clock: SecondsClock
) -> None:
    wallet = registered_wallet(home, backend, clock)
    before = [parsed(wallet.code()).counter for _ in range(2)]
    restarted = Wallet(DeviceKeyStore(home), backend, clock=clock)
    after = [parsed(restarted.code()).counter for _ in range(2)]
    assert before + after == [0, 1, 2, 3]


def test_the_counter_wraps_to_zero_after_65535(
    home: Path, backend: FakeRiderApi, clock: SecondsClock
) -> None:
    wallet = registered_wallet(home, backend, clock)
    wallet.state.counter = U16_MAX
    assert [parsed(wallet.code()).counter for _ in range(2)] == [U16_MAX, 0]


@pytest.mark.parametrize("server_ahead_s", [0, 3600, -90])
def test_generated_at_is_the_phone_time_corrected_by_the_server_offset(
    home: Path, clock: SecondsClock, server_ahead_s: int
) -> None:
    backend = FakeRiderApi(clock, server_ahead_s=server_ahead_s)
    wallet = registered_wallet(home, backend, clock)
    clock.advance(125.0)
    code = parsed(wallet.code())
    assert wallet.state.clock_offset_s == server_ahead_s
    assert code.generated_at == int(clock() + server_ahead_s)
    assert backend.verifier().verify(wallet.code(), backend.server_time()).accepted


@pytest.mark.parametrize("fraction_s", [0.0, 0.25, 0.5, 0.99])
def test_a_phone_on_the_server_clock_learns_no_offset(home: Path, fraction_s: float) -> None:
    # The server answers in whole seconds; wherever in the second it answered, the phone must
    # not conclude that its own clock is a second off.
    clock = SecondsClock(float(int(PHONE_NOW_S)) + fraction_s)
    wallet = registered_wallet(home, FakeRiderApi(clock), clock)
    assert wallet.state.clock_offset_s == 0


# Renewal


def test_renew_if_due_renews_only_inside_the_window(
    home: Path, backend: FakeRiderApi, clock: SecondsClock
) -> None:
    wallet = registered_wallet(home, backend, clock)
    first_not_after = wallet.state.not_after
    assert first_not_after is not None
    assert not wallet.renew_if_due()
    clock.advance(first_not_after - RENEW_BEFORE_S - PHONE_NOW_S - 1)
    assert not wallet.renew_if_due()
    assert "renew" not in backend.calls
    clock.advance(1)
    assert wallet.renew_if_due()
    assert backend.calls.count("renew") == 1
    assert wallet.state.not_after is not None
    assert wallet.state.not_after > first_not_after
    assert not wallet.renew_if_due()


def test_renew_window_is_judged_by_the_server_clock(home: Path, clock: SecondsClock) -> None:
    # The phone's clock is a day slow: by its own reckoning the certificate has 72 h left, but
    # the server says less than 12 h, so it renews.
    backend = FakeRiderApi(clock, server_ahead_s=0)
    wallet = registered_wallet(home, backend, clock)
    wallet.state.clock_offset_s = CERTIFICATE_LIFETIME_S - RENEW_BEFORE_S
    assert wallet.renew_if_due()


def test_renewing_an_unregistered_wallet_is_refused(home: Path, backend: FakeRiderApi) -> None:
    with pytest.raises(WalletError) as raised:
        Wallet(DeviceKeyStore(home), backend).renew_if_due()
    assert raised.value.code == "not_registered"
    assert backend.calls == []


# Status


def test_status_reads_the_registered_account(
    home: Path, backend: FakeRiderApi, clock: SecondsClock
) -> None:
    wallet = registered_wallet(home, backend, clock)
    status = wallet.status(5)
    assert status.account.available_vnd == 50_000
    assert backend.calls[-2:] == ["account", f"statement {backend.account_id} 5"]


@pytest.mark.parametrize("lines", [0, 51])
def test_status_refuses_a_line_count_out_of_bounds(
    home: Path, backend: FakeRiderApi, clock: SecondsClock, lines: int
) -> None:
    wallet = registered_wallet(home, backend, clock)
    with pytest.raises(WalletError) as raised:
        wallet.status(lines)
    assert raised.value.code == "bad_line_count"


# The HTTP client


def api_over(handler: httpx.MockTransport) -> RiderApi:
    return RiderApi(API_URL, "tok-secret", transport=handler)


def test_api_sends_the_bearer_token_and_the_device_key_in_base64() -> None:
    seen: list[httpx.Request] = []
    clock = SecondsClock(PHONE_NOW_S)
    backend = FakeRiderApi(clock)
    card_id = uuid4()
    device_key = compress_p256(ec.generate_private_key(ec.SECP256R1()).public_key())
    backend.device_keys[card_id] = device_key

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=backend.get_virtual_card(card_id).model_dump(mode="json"))

    account_id = uuid4()
    with api_over(httpx.MockTransport(handler)) as api:
        reply = api.issue_virtual_card(account_id, device_key)
    assert reply.card_id == card_id
    (request,) = seen
    assert request.url == f"{API_URL}/v1/accounts/{account_id}/virtual-cards"
    assert request.headers["authorization"] == "Bearer tok-secret"
    assert base64.b64decode(json.loads(request.content)["device_key"]) == device_key


def test_api_problem_becomes_a_typed_error_with_its_code() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        body = {"status": 409, "code": "card_not_active", "detail": "the card was retired"}
        return httpx.Response(409, json=body, headers={"content-type": "application/problem+json"})

    with api_over(httpx.MockTransport(handler)) as api, pytest.raises(RiderApiError) as raised:
        api.renew_virtual_card(uuid4())
    error = raised.value
    assert (error.code, error.detail, error.status) == (
        "card_not_active",
        "the card was retired",
        409,
    )


def test_api_error_without_a_problem_body_is_still_typed() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>")

    with api_over(httpx.MockTransport(handler)) as api, pytest.raises(RiderApiError) as raised:
        api.me()
    assert (raised.value.code, raised.value.status) == ("http_error", 502)


def test_api_unreachable_is_a_typed_error_without_a_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with api_over(httpx.MockTransport(handler)) as api, pytest.raises(RiderApiError) as raised:
        api.me()
    assert (raised.value.code, raised.value.status) == ("unreachable", None)


def test_api_reply_with_a_short_certificate_is_a_bad_response() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        body = {
            "card_id": str(uuid4()),
            "account_id": str(uuid4()),
            "status": "active",
            "issuer_key_id": 1,
            "certificate": "AAAA",
            "not_before": 0,
            "not_after": 1,
            "server_time": 0,
        }
        return httpx.Response(200, json=body)

    with api_over(httpx.MockTransport(handler)) as api, pytest.raises(RiderApiError) as raised:
        api.get_virtual_card(uuid4())
    assert (raised.value.code, raised.value.status) == ("bad_response", 200)
