"""Parking on the rider's page, in a real Chromium against a real server in this process: the
rider's open sessions are listed, one ending soon is a reminder with a one-tap extension, and the
extension is checked over the API too."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Request, expect

from tests.e2e.in_process_server import served_locally
from tests.e2e.phones import bearer, chromium, fresh_phone, watch_for_errors
from tests.e2e.riders import ADMIN, AppRider, funded_rider_with_token

REQUEST_TIMEOUT_S = 10.0
POLL_S = 0.05
FOLLOWER_WAIT_S = 15.0
# Dong Da's table charges a car 25,000 VND for each of its first two hours, so ten minutes hold
# one hour's price and the extended seventy minutes two.
LOT = "rider-page-lot"
OPERATOR = "rider-page-operator"
HOUR_VND = 25_000
FUNDS_VND = 200_000
# Enough for the first hour's hold and not for the second.
SHORT_FUNDS_VND = 30_000
REMINDER_IN = timedelta(minutes=10)
NOT_YET_IN = timedelta(hours=3)
EXTENSION = timedelta(hours=1)
# The page's own constants (rider.js): its reminder window and how often it lists sessions again.
REMINDER_WINDOW = timedelta(minutes=15)
PARKING_REFRESH_S = 30
# Far enough from the window's edge that the test's own seconds cannot blur it.
CLOCK_STEP = timedelta(minutes=1)
MS_PER_S = 1000
# What the page sends as an extension id: `app-` and a fresh crypto.randomUUID().
EXTENSION_ID = re.compile(
    r"^app-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)
LOT_BODY: dict[str, Any] = {
    "lot_id": LOT,
    "operator_id": OPERATOR,
    "name": "Ton Duc Thang",
    "address": "Ton Duc Thang, Dong Da, Hanoi",
    "lat": 21.0187,
    "lon": 105.8290,
    # Always open, so what the tests pay does not depend on the hour they run at.
    "opening_hours": None,
    "capacity": {"car": 10, "motorbike": 10},
    "table_id": "hanoi-dong-da",
}


@dataclass
class Site:
    """The running server with an operator and a lot, and an HTTP client speaking to it."""

    base_url: str
    client: httpx.Client

    def new_rider(self, top_up_vnd: int) -> AppRider:
        return funded_rider_with_token(self.client, top_up_vnd, "park")

    def park(self, rider: AppRider, plate: str, paid_for: timedelta) -> dict[str, Any]:
        """A session started from the app, listed to its rider by the time this returns."""
        # Whole seconds, so that "an hour later" is exact in the test's arithmetic too.
        paid_until = (datetime.now(UTC) + paid_for).replace(microsecond=0)
        body = {
            "start_id": f"park-{plate}",
            "lot_id": LOT,
            "plate": plate,
            "vehicle_class": "car",
            "paid_until": paid_until.isoformat(),
        }
        started = self.client.post("/v1/parking/sessions", json=body, headers=bearer(rider.token))
        assert started.status_code == httpx.codes.CREATED, started.text
        session: dict[str, Any] = started.json()
        self.wait_until_listed(rider, session["session_id"])
        return session

    def wait_until_listed(self, rider: AppRider, session_id: str) -> None:
        """The list comes from a read model following the events: wait for the new session."""
        deadline = time.monotonic() + FOLLOWER_WAIT_S
        while time.monotonic() < deadline:
            listed = self.client.get(
                "/v1/parking/sessions?mine=true&state=open", headers=bearer(rider.token)
            )
            assert listed.status_code == httpx.codes.OK, listed.text
            if session_id in {item["session_id"] for item in listed.json()["items"]}:
                return
            time.sleep(POLL_S)
        pytest.fail(f"session {session_id} was not listed within {FOLLOWER_WAIT_S} s")

    def session(self, rider: AppRider, session_id: str) -> dict[str, Any]:
        got = self.client.get(f"/v1/parking/sessions/{session_id}", headers=bearer(rider.token))
        assert got.status_code == httpx.codes.OK, got.text
        session: dict[str, Any] = got.json()
        return session


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The app over SQLite in local mode, with an operator and an always-open lot."""
    data_dir = tmp_path_factory.mktemp("rider-page-parking")
    with (
        served_locally(data_dir, name="rider-page-parking-server") as base_url,
        httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client,
    ):
        operator = {"operator_id": OPERATOR, "name": "Test parking"}
        created = client.post("/v1/parking/operators", json=operator, headers=ADMIN)
        assert created.status_code == httpx.codes.CREATED, created.text
        created = client.post("/v1/parking/lots", json=LOT_BODY, headers=ADMIN)
        assert created.status_code == httpx.codes.CREATED, created.text
        yield Site(base_url, client)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    with fresh_phone(browser) as context:
        yield context


def open_page(site: Site, phone: BrowserContext, rider: AppRider) -> Page:
    page = phone.new_page()
    page.goto(f"{site.base_url}/rider#token={rider.token}")
    return page


def listed(page: Page, session: dict[str, Any]) -> Locator:
    return page.locator(f"#parking-sessions li[data-session-id='{session['session_id']}']")


def watch_extensions(page: Page) -> list[Request]:
    seen: list[Request] = []

    def _on_request(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/extensions"):
            seen.append(request)

    page.on("request", _on_request)
    return seen


def at(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


def test_a_session_ending_soon_is_a_reminder_and_one_tap_extends_it_by_an_hour(
    site: Site, phone: BrowserContext, tmp_path: Path
) -> None:
    rider = site.new_rider(FUNDS_VND)
    session = site.park(rider, "29A-111.11", REMINDER_IN)
    assert session["held_vnd"] == HOUR_VND
    page = open_page(site, phone, rider)
    errors = watch_for_errors(page)
    extensions = watch_extensions(page)

    item = listed(page, session)
    expect(item).to_have_class(re.compile(r"\breminder\b"))
    expect(item).to_have_attribute("data-reminder", "true")
    expect(item.locator(".plate")).to_have_text("29A-111.11")
    expect(item.locator(".lot")).to_have_text(LOT_BODY["name"])
    expect(item.locator(".time-left")).to_have_text(re.compile(r"^([89]|10) min left$"))
    page.screenshot(path=tmp_path / "reminder.png", full_page=True)

    item.get_by_role("button", name="Extend 1 h").tap()

    extended_until = at(session["paid_until"]) + EXTENSION
    outcome = item.locator(".outcome")
    expect(outcome).to_have_attribute("data-outcome", "ok")
    expect(outcome).to_contain_text("Extended: paid until")
    expect(item).to_have_attribute("data-held-vnd", str(2 * HOUR_VND))
    assert at(item.get_attribute("data-paid-until")) == extended_until
    # Seventy minutes left: no longer a reminder, and nothing left to tap.
    expect(item).to_have_attribute("data-reminder", "false")
    expect(item.locator(".extend")).to_be_hidden()
    now = site.session(rider, session["session_id"])
    assert at(now["paid_until"]) == extended_until
    assert now["held_vnd"] == 2 * HOUR_VND
    assert len(extensions) == 1
    sent = extensions[0].post_data_json
    assert sent is not None
    assert EXTENSION_ID.match(sent["extension_id"]), sent
    assert at(sent["paid_until"]) == extended_until
    assert errors == []


def test_a_session_ending_in_hours_is_listed_without_a_reminder(
    site: Site, phone: BrowserContext
) -> None:
    rider = site.new_rider(FUNDS_VND)
    later = site.park(rider, "29A-222.22", NOT_YET_IN)
    soon = site.park(rider, "29A-333.33", REMINDER_IN)
    page = open_page(site, phone, rider)

    items = page.locator("#parking-sessions li")
    # The soonest paid end first, whatever order the sessions were started in.
    expect(items).to_have_count(2)
    expect(items.locator(".plate")).to_have_text(["29A-333.33", "29A-222.22"])
    item = listed(page, later)
    expect(item).to_have_attribute("data-reminder", "false")
    expect(item).not_to_have_class(re.compile(r"\breminder\b"))
    expect(item.locator(".extend")).to_be_hidden()
    expect(item.locator(".time-left")).to_have_text(re.compile(r"^2 h 5[89] min left$"))
    expect(listed(page, soon)).to_have_attribute("data-reminder", "true")
    expect(page.locator("#parking-empty")).to_be_hidden()


def test_a_refused_extension_shows_its_code_and_changes_nothing(
    site: Site, phone: BrowserContext
) -> None:
    rider = site.new_rider(SHORT_FUNDS_VND)
    session = site.park(rider, "29A-444.44", REMINDER_IN)
    page = open_page(site, phone, rider)
    item = listed(page, session)

    item.get_by_role("button", name="Extend 1 h").tap()

    outcome = item.locator(".outcome")
    expect(outcome).to_have_attribute("data-outcome", "refused")
    expect(outcome).to_have_attribute("data-code", "insufficient_funds")
    expect(outcome).to_contain_text("insufficient_funds")
    # Still a reminder, with the button to try again once the rider has topped up.
    expect(item).to_have_attribute("data-reminder", "true")
    expect(item.locator(".extend")).to_be_enabled()
    expect(item).to_have_attribute("data-held-vnd", str(HOUR_VND))
    now = site.session(rider, session["session_id"])
    assert (now["paid_until"], now["held_vnd"]) == (session["paid_until"], HOUR_VND)


def test_a_rider_with_nothing_parked_sees_an_empty_parking_list(
    site: Site, phone: BrowserContext
) -> None:
    rider = site.new_rider(FUNDS_VND)
    page = open_page(site, phone, rider)

    expect(page.locator("#parking-empty")).to_be_visible()
    expect(page.locator("#parking-sessions li")).to_have_count(0)


def test_the_list_is_refreshed_and_a_session_becomes_a_reminder_as_time_passes(
    site: Site, phone: BrowserContext
) -> None:
    rider = site.new_rider(FUNDS_VND)
    page = phone.new_page()
    page.clock.install()
    page.goto(f"{site.base_url}/rider#token={rider.token}")
    expect(page.locator("#parking-empty")).to_be_visible()
    session = site.park(rider, "29A-555.55", REMINDER_WINDOW + CLOCK_STEP)

    page.clock.fast_forward(PARKING_REFRESH_S * MS_PER_S)

    item = listed(page, session)
    expect(item).to_have_attribute("data-reminder", "false")

    page.clock.fast_forward(round(2 * CLOCK_STEP.total_seconds() * MS_PER_S))

    expect(item).to_have_attribute("data-reminder", "true")
    expect(item.locator(".extend")).to_be_visible()


@pytest.mark.parametrize(
    ("paid_until", "seconds", "expected"),
    [
        # The server's microseconds are kept: a Date alone would cut them to milliseconds.
        ("2026-12-06T10:00:00.123456Z", 3600, "2026-12-06T11:00:00.123456Z"),
        ("2026-12-06T10:00:00Z", 3600, "2026-12-06T11:00:00.000Z"),
        # An offset is read, and the answer is in UTC.
        ("2026-12-06T17:30:00+07:00", 3600, "2026-12-06T11:30:00.000Z"),
        # Across midnight and a month's end.
        ("2026-12-31T23:30:00.5+00:00", 3600, "2027-01-01T00:30:00.5Z"),
    ],
)
def test_page_moves_a_paid_end_by_whole_seconds_exactly(
    site: Site, phone: BrowserContext, paid_until: str, seconds: int, expected: str
) -> None:
    page = phone.new_page()
    page.goto(f"{site.base_url}/rider")
    moved = page.evaluate(
        """async ([paidUntil, seconds]) => {
            const page = await import("/static/rider.js");
            return page.laterBy(paidUntil, seconds);
        }""",
        [paid_until, seconds],
    )
    assert moved == expected


def test_page_words_the_time_left_and_the_time_overrun(site: Site, phone: BrowserContext) -> None:
    page = phone.new_page()
    page.goto(f"{site.base_url}/rider")
    seconds = [3 * 3600, 3 * 3600 - 1, 3665, 600, 59, 0, -30, -60, -3900]
    worded = page.evaluate(
        """async (seconds) => {
            const page = await import("/static/rider.js");
            return seconds.map(page.formatTimeLeft);
        }""",
        seconds,
    )
    assert worded == [
        "3 h left",
        "2 h 59 min left",
        "1 h 01 min left",
        "10 min left",
        "less than a minute left",
        "paid time just ended",
        "paid time just ended",
        "paid time ended 1 min ago",
        "paid time ended 1 h 05 min ago",
    ]
