"""The rider's web page in a real Chromium against a real server in this process.

The page makes its own P-256 key, gets it certified and signs codes in the browser; the tests read
the QR off a screenshot, as a validator's camera would, and check it with the validator's own
`Verifier`.
"""

from __future__ import annotations

import base64
import io
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from tapledger.http.problems import PROBLEM_MEDIA_TYPE
from tapledger.settings import LOCAL_ADMIN_TOKEN
from tapledger.web.pages import QR_TEXT_MAX_CHARS
from tests.e2e.in_process_server import served_locally
from tests.e2e.phones import bearer, chromium, fresh_phone, watch_for_errors
from tests.e2e.riders import ADMIN, AppRider, funded_rider_with_token
from ticketing.tl1 import base45
from ticketing.tl1.keyset import IssuerKeySet
from ticketing.tl1.layout import Code, code_from_text, parse_code
from ticketing.tl1.replay import STALE_AFTER_S_DEFAULT, ReplayWindow
from ticketing.tl1.verify import Decision, Verifier

TOP_UP_VND = 50_000
REQUEST_TIMEOUT_S = 10.0
POLL_S = 0.05
FOLLOWER_WAIT_S = 15.0
# The page replaces its code every 30 s; a screenshot taken across a replacement is retried.
SCREENSHOT_ATTEMPTS_MAX = 3
# 400 alphanumeric characters need version 12 at level M, past the version 10 the page may use.
TOO_LONG_FOR_VERSION_10 = "A" * QR_TEXT_MAX_CHARS
DRAWABLE_TEXT = "TL1:" + "A" * 294
# The countdown to the next code: 1 to 30 seconds.
SECONDS_LEFT = re.compile(r"^(30|[12][0-9]|[1-9])$")
# The page writes negative amounts with a true minus sign, as print does, not a hyphen.
MINUS_SIGN = "\u2212"
MS_PER_S = 1000
# Newest first: the top-up, then the opening of the account.
NEW_ACCOUNT_ACTIVITY = ["Top-up", "Account opened"]


@dataclass
class Site:
    """The running server and an HTTP client speaking to it."""

    base_url: str
    client: httpx.Client

    def new_rider(self, top_up_vnd: int) -> AppRider:
        rider = funded_rider_with_token(self.client, top_up_vnd, "web")
        # The statement comes from a read model that follows the events; wait for the opening
        # and the top-up, so the page's first look at the activity already has both.
        self.wait_for_statement(rider, lines=len(NEW_ACCOUNT_ACTIVITY))
        return rider

    def wait_for_statement(self, rider: AppRider, *, lines: int) -> None:
        deadline = time.monotonic() + FOLLOWER_WAIT_S
        while time.monotonic() < deadline:
            response = self.client.get(
                f"/v1/accounts/{rider.account_id}/statement", headers=bearer(rider.token)
            )
            assert response.status_code == httpx.codes.OK, response.text
            if len(response.json()["lines"]) >= lines:
                return
            time.sleep(POLL_S)
        pytest.fail(f"the statement did not reach {lines} lines within {FOLLOWER_WAIT_S} s")

    def verifier(self, rider: AppRider) -> Verifier:
        """A validator's verifier with the issuer keys the server publishes."""
        response = self.client.get("/v1/issuer-keys", headers=bearer(rider.token))
        assert response.status_code == httpx.codes.OK, response.text
        published = response.json()
        keys = IssuerKeySet.from_bytes(
            {key["key_id"]: key["public_key"] for key in published["keys"]},
            revoked=published["revoked"],
            version=published["version"],
        )
        return Verifier(keys, frozenset(), replay_window=ReplayWindow(), certificate_cache=None)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The app over SQLite in local mode, served by uvicorn in a thread on a free port."""
    data_dir = tmp_path_factory.mktemp("rider-page")
    with (
        served_locally(data_dir, name="rider-page-server") as base_url,
        httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client,
    ):
        yield Site(base_url, client)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh phone: its own localStorage and IndexedDB, so its own device key."""
    with fresh_phone(browser) as context:
        yield context


def watch_registrations(page: Page) -> list[str]:
    """The URLs of the page's requests that register a device key."""
    seen: list[str] = []

    def _on_request(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/virtual-cards"):
            seen.append(request.url)

    page.on("request", _on_request)
    return seen


def fresh_device_key_b64() -> str:
    """Another phone's public key, as the page sends its own: uncompressed SEC1, base64."""
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    raw = public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.b64encode(raw).decode()


def shown_code(page: Page) -> str:
    page.wait_for_selector("#qr[data-code] svg")
    text = page.locator("#qr").get_attribute("data-code")
    assert text is not None
    return text


def parsed(text: str) -> Code:
    return parse_code(code_from_text(text))


def screenshot_code(page: Page) -> tuple[str, bytes]:
    """The code text the page claims to show, and a PNG of the QR it really shows."""
    qr = page.locator("#qr")
    for _ in range(SCREENSHOT_ATTEMPTS_MAX):
        before = shown_code(page)
        png = qr.screenshot(type="png")
        if qr.get_attribute("data-code") == before:
            return before, png
    pytest.fail("the code changed during every screenshot")


def read_qr(png: bytes) -> str:
    barcode = zxingcpp.read_barcode(Image.open(io.BytesIO(png)), try_invert=False)
    assert barcode is not None, "the decoder found no QR symbol in the screenshot"
    assert barcode.format == zxingcpp.BarcodeFormat.QRCode
    return barcode.text


def test_page_shows_a_device_signed_code_that_a_validator_accepts(
    site: Site, phone: BrowserContext, tmp_path: Path
) -> None:
    rider = site.new_rider(TOP_UP_VND)
    page = phone.new_page()
    errors = watch_for_errors(page)
    page.goto(f"{site.base_url}/rider#token={rider.token}")

    text, png = screenshot_code(page)
    (tmp_path / "qr.png").write_bytes(png)
    page.screenshot(path=tmp_path / "rider-page.png", full_page=True)

    assert read_qr(png) == text
    decision = site.verifier(rider).verify(text, now=int(time.time())).decision
    assert decision is Decision.ACCEPTED
    device = page.locator("#device")
    expect(device).to_have_attribute("data-extractable", "false")
    expect(device).to_contain_text("non-extractable")
    expect(device).to_have_attribute("data-card-id", str(parsed(text).certificate.card_id))
    expect(page.locator("#balance")).to_have_text("50.000 ₫")
    expect(page.locator("#activity li")).to_have_count(len(NEW_ACCOUNT_ACTIVITY))
    expect(page.locator("#activity li .what")).to_have_text(NEW_ACCOUNT_ACTIVITY)
    expect(page.locator("#activity li").first.locator(".amount")).to_have_text("+50.000 ₫")
    expect(page.locator("#status")).to_have_attribute("data-state", "ok")
    expect(page.locator("#countdown")).to_have_text(SECONDS_LEFT)
    assert "token=" not in page.url, "the token stayed in the address bar"
    assert errors == []


def test_reloading_the_page_keeps_its_device_and_card_and_counts_on(
    site: Site, phone: BrowserContext
) -> None:
    rider = site.new_rider(TOP_UP_VND)
    page = phone.new_page()
    registrations = watch_registrations(page)
    page.goto(f"{site.base_url}/rider#token={rider.token}")
    first = parsed(shown_code(page))
    device = page.locator("#device")
    fingerprint = device.get_attribute("data-fingerprint")

    page.reload()
    second = parsed(shown_code(page))

    assert len(registrations) == 1, registrations
    assert second.certificate.card_id == first.certificate.card_id
    assert second.certificate.device_key == first.certificate.device_key
    assert second.counter > first.counter
    expect(device).to_have_attribute("data-card-id", str(first.certificate.card_id))
    assert device.get_attribute("data-fingerprint") == fingerprint
    card = site.client.get(
        f"/v1/virtual-cards/{first.certificate.card_id}", headers=bearer(rider.token)
    )
    assert card.json()["status"] == "active"


def test_page_registers_again_when_another_phone_took_over_the_account(
    site: Site, phone: BrowserContext
) -> None:
    rider = site.new_rider(TOP_UP_VND)
    page = phone.new_page()
    registrations = watch_registrations(page)
    page.goto(f"{site.base_url}/rider#token={rider.token}")
    first = parsed(shown_code(page))
    other_phone = site.client.post(
        f"/v1/accounts/{rider.account_id}/virtual-cards",
        json={"device_key": fresh_device_key_b64()},
        headers=bearer(rider.token),
    )
    assert other_phone.status_code == httpx.codes.CREATED, other_phone.text

    page.reload()
    second = parsed(shown_code(page))

    assert len(registrations) == 2, registrations
    assert second.certificate.card_id != first.certificate.card_id
    assert second.certificate.device_key == first.certificate.device_key


def test_page_shows_no_code_for_a_blocked_card_and_does_not_register_again(
    site: Site, phone: BrowserContext
) -> None:
    rider = site.new_rider(TOP_UP_VND)
    page = phone.new_page()
    registrations = watch_registrations(page)
    page.goto(f"{site.base_url}/rider#token={rider.token}")
    card_id = parsed(shown_code(page)).certificate.card_id
    blocked = site.client.post(
        f"/v1/virtual-cards/{card_id}/block",
        json={"reason": "phone lost"},
        headers=bearer(rider.token),
    )
    assert blocked.status_code == httpx.codes.OK, blocked.text

    page.reload()

    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "error")
    expect(status).to_contain_text("blocked")
    expect(page.locator("#qr[data-code]")).to_have_count(0)
    assert len(registrations) == 1, registrations


def test_page_withdraws_a_code_it_cannot_replace_before_it_goes_stale(
    site: Site, phone: BrowserContext
) -> None:
    rider = site.new_rider(TOP_UP_VND)
    page = phone.new_page()
    page.clock.install()
    page.goto(f"{site.base_url}/rider#token={rider.token}")
    shown_code(page)
    page.route("**/v1/qr.svg", lambda route: route.abort("internetdisconnected"))

    page.clock.fast_forward(STALE_AFTER_S_DEFAULT * MS_PER_S)

    expect(page.locator("#qr")).to_have_class(re.compile(r"\bwithdrawn\b"))
    expect(page.locator("#qr[data-code]")).to_have_count(0)
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "error")
    expect(status).to_contain_text("Cannot reach the server")


def test_a_pasted_token_is_kept_and_shows_the_ticket(site: Site, phone: BrowserContext) -> None:
    rider = site.new_rider(TOP_UP_VND)
    page = phone.new_page()
    page.goto(f"{site.base_url}/rider")
    expect(page.locator("#token-form")).to_be_visible()

    page.fill("#token-input", rider.token)
    page.click("#token-form button[type=submit]")

    assert parsed(shown_code(page)).certificate.card_id
    expect(page.locator("#token-form")).to_be_hidden()
    assert page.evaluate("localStorage.getItem('tapledger.riderToken')") == rider.token


def test_page_asks_for_a_new_token_when_the_server_refuses_it(
    site: Site, phone: BrowserContext
) -> None:
    page = phone.new_page()
    page.goto(f"{site.base_url}/rider#token=tlk_not_a_real_token")

    expect(page.locator("#token-form")).to_be_visible()
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "error")
    expect(status).to_contain_text("refused")
    expect(page.locator("#ticket")).to_be_hidden()
    assert page.evaluate("localStorage.getItem('tapledger.riderToken')") is None


def test_page_refuses_a_staff_token(site: Site, phone: BrowserContext) -> None:
    page = phone.new_page()
    page.goto(f"{site.base_url}/rider#token={LOCAL_ADMIN_TOKEN}")

    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "error")
    expect(status).to_contain_text("needs a rider token")
    expect(page.locator("#qr[data-code]")).to_have_count(0)


def test_page_base45_encoder_matches_the_reference_encoder(
    site: Site, phone: BrowserContext
) -> None:
    page = phone.new_page()
    page.goto(f"{site.base_url}/rider")
    # Empty, a lone byte at both ends of its range, the largest group, RFC 9285's own examples,
    # every byte value, and a code-sized random string.
    samples = [b"", b"\x00", b"\xff", b"\xff\xff", b"AB", b"Hello!!", b"ietf!"]
    samples += [bytes(range(256)), os.urandom(196)]
    encoded = page.evaluate(
        """async (samples) => {
            const page = await import("/static/rider.js");
            return samples.map((sample) => page.base45Encode(new Uint8Array(sample)));
        }""",
        [list(sample) for sample in samples],
    )
    assert encoded == [base45.encode(sample) for sample in samples]
    assert encoded[4:7] == ["BB8", "%69 VD92EX0", "QED8WEX0"]


def test_page_formats_amounts_as_vnd_with_thousands_separators(
    site: Site, phone: BrowserContext
) -> None:
    page = phone.new_page()
    page.goto(f"{site.base_url}/rider")
    amounts = [0, 999, 1_000, 173_000, 1_234_567, -7_000]
    formatted = page.evaluate(
        """async (amounts) => {
            const page = await import("/static/rider.js");
            return amounts.map(page.formatVnd);
        }""",
        amounts,
    )
    assert formatted == [
        "0 ₫",
        "999 ₫",
        "1.000 ₫",
        "173.000 ₫",
        "1.234.567 ₫",
        f"{MINUS_SIGN}7.000 ₫",
    ]


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert response.json()["code"] == code


def test_qr_svg_draws_a_code_text_as_an_uncached_svg(site: Site) -> None:
    rider = site.new_rider(TOP_UP_VND)
    response = site.client.post(
        "/v1/qr.svg", json={"text": DRAWABLE_TEXT}, headers=bearer(rider.token)
    )
    assert response.status_code == httpx.codes.OK, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.headers["cache-control"] == "no-store"
    assert response.text.startswith("<svg")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("tl1:lowercase", "qr_text_not_alphanumeric"),
        (TOO_LONG_FOR_VERSION_10, "qr_code_too_long"),
        (TOO_LONG_FOR_VERSION_10 + "A", "validation_error"),
        ("", "validation_error"),
    ],
)
def test_qr_svg_refuses_text_it_cannot_draw(site: Site, text: str, code: str) -> None:
    response = site.client.post("/v1/qr.svg", json={"text": text}, headers=ADMIN)
    assert_problem(response, 422, code)


def test_qr_svg_needs_a_token(site: Site) -> None:
    response = site.client.post("/v1/qr.svg", json={"text": DRAWABLE_TEXT})
    assert_problem(response, 401, "not_authenticated")


def test_rider_page_is_served_with_a_policy_allowing_only_its_own_scripts(site: Site) -> None:
    page = site.client.get("/rider")
    assert page.status_code == httpx.codes.OK
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    script = site.client.get("/static/rider.js")
    assert script.status_code == httpx.codes.OK
    assert "javascript" in script.headers["content-type"]


def test_a_missing_static_file_is_a_problem_404(site: Site) -> None:
    assert_problem(site.client.get("/static/missing.js"), 404, "not_found")
