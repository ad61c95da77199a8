"""The parking attendant's handheld page in a real Chromium, served by a real server in this
process.

Two kinds of test. Those named `..._on_the_server` speak to the real parking routes of
docs/parking-api.md, paying with a TL1 code a rider's phone signed. The others answer the page's
parking requests with `ParkingStub` (tests/e2e/parking_stub.py) through Playwright's routing, so
the page's own logic (the outbox, its order, its ids, what it shows) is tested on its own and
with failures a real server does not make on demand: a lost answer, a 5xx, no network.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Request,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.e2e.browser import CHROMIUM_ARGS, chromium_executable
from tests.e2e.in_process_server import served_locally
from tests.e2e.parking_stub import PARKING_ROUTES, ParkingStub
from tests.e2e.riders import ADMIN, rider_with_phone
from tests.e2e.workers import wait_until
from tests.tap_media import Phone

REQUEST_TIMEOUT_S = 10.0
PAGE_TIMEOUT_MS = 15_000
# The page replays its outbox every 5 s; a test waiting for a replay by timer allows three.
REPLAY_WAIT_MS = 15_000
# How long the sessions' view may trail the store on a busy machine before a test fails.
VIEW_WAIT_S = 30.0
HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
HANDHELD_VIEWPORT: ViewportSize = {"width": 412, "height": 915}
LOT_ID = "hk-ly-thai-to"
OPERATOR_ID = "iparking"
RATE_TABLE_ID = "hanoi-iparking"
STUB_TOKEN = "tlk_stub_operator"
DEVICE = "h01"
PLATE = "29A-123.45"
OTHER_PLATE = "30E-456.78"
THIRD_PLATE = "29B-222.33"
TOP_UP_VND = 500_000
# A scanned code the stub accepts: the stub checks no signature, only that a code is there.
STUB_CODE = "TL1:" + "A" * 294
STARTED = re.compile(r"^Started (\S+), paid until \d\d:\d\d$")
ANY_QUEUE_LINE = re.compile(r"^(online|offline) —")


@dataclass
class Site:
    base_url: str
    client: httpx.Client


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The app over SQLite in local mode, served by uvicorn in a thread on a free port."""
    data_dir = tmp_path_factory.mktemp("attendant-page")
    with (
        served_locally(data_dir, name="attendant-page-server") as base_url,
        httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client,
    ):
        yield Site(base_url, client)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_executable()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=list(CHROMIUM_ARGS), headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def handheld(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh handheld: its own localStorage and IndexedDB, so its own outbox and sequence."""
    context = browser.new_context(
        viewport=HANDHELD_VIEWPORT, is_mobile=True, has_touch=True, timezone_id=HANOI.key
    )
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def stub(handheld: BrowserContext) -> ParkingStub:
    """The parking API of this handheld, faked; on the context, so it outlives a reload."""
    fake = ParkingStub(token=STUB_TOKEN)
    handheld.route(PARKING_ROUTES, fake.handle)
    return fake


# ---------------------------------------------------------------- driving the page


def open_page(context: BrowserContext, base_url: str, token: str, device: str = DEVICE) -> Page:
    page = context.new_page()
    page.goto(f"{base_url}/attendant#token={token}&lot={LOT_ID}&device={device}")
    wait_until_settled(page)
    return page


def wait_until_settled(page: Page) -> None:
    """Until the page has replayed its outbox and asked for the lot's sessions once."""
    expect(page.locator("#queue")).to_have_text(ANY_QUEUE_LINE)
    expect(page.locator("#sessions-when")).not_to_be_empty()


def scan_and_start(page: Page, code: str, plate: str, vehicle_class: str = "car") -> None:
    """Types the plate, then the code as a scanner does: its text, keystroke by keystroke,
    then Enter."""
    page.fill("#plate-input", plate)
    page.select_option("#class-input", vehicle_class)
    scanner = page.locator("#scan-input")
    scanner.focus()
    page.keyboard.insert_text(code)
    scanner.press("Enter")


def end_plate(page: Page, plate: str) -> None:
    page.fill("#plate-input", plate)
    page.click("#end")


def expect_result(
    page: Page, outcome: str, text: str | re.Pattern[str], timeout_ms: float = PAGE_TIMEOUT_MS
) -> None:
    expect(page.locator("#result")).to_have_attribute("data-outcome", outcome, timeout=timeout_ms)
    expect(page.locator("#result-title")).to_have_text(text)


def expect_queued(page: Page, queued: int, timeout_ms: float = PAGE_TIMEOUT_MS) -> None:
    expect(page.locator("#queue")).to_have_attribute("data-queued", str(queued), timeout=timeout_ms)


def expect_kept_for_offline(page: Page) -> None:
    """Until the page's service worker holds the page for an offline reload."""
    expect(page.locator("body")).to_have_attribute("data-offline-ready", "true")


def set_offline(context: BrowserContext, stub: ParkingStub, offline: bool) -> None:
    """The browser's network and the stub's together: Playwright's routing still reaches the
    stub while the browser is offline, as no real server would be reached."""
    stub.down = offline
    context.set_offline(offline)


def idempotency_keys(page: Page) -> list[str]:
    """The Idempotency-Key of every request the page makes from now on, in order."""
    seen: list[str] = []

    def _on_request(request: Request) -> None:
        key = request.headers.get("idempotency-key")
        if key is not None:
            seen.append(key)

    page.on("request", _on_request)
    return seen


def clock_in_hanoi(iso_text: str) -> str:
    return datetime.fromisoformat(iso_text).astimezone(HANOI).strftime("%H:%M")


# ---------------------------------------------------------------- the page itself


class _InlineFinder(HTMLParser):
    """Scripts without `src`, style elements and attributes, and `on...` handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.inline.append("<script> without src")
        if tag == "style":
            self.inline.append("<style>")
        self.inline += [f"{tag}[{name}]" for name in names if name == "style" or name[:2] == "on"]


def test_attendant_page_is_served_with_a_policy_allowing_only_its_own_scripts(
    site: Site,
) -> None:
    page = site.client.get("/attendant")

    assert page.status_code == httpx.codes.OK
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    finder = _InlineFinder()
    finder.feed(page.text)
    assert finder.inline == []
    for asset in ("attendant.js", "attendant-outbox.js", "vnd.js", "attendant.css"):
        assert site.client.get(f"/static/{asset}").status_code == httpx.codes.OK, asset
    worker = site.client.get("/attendant-sw.js")
    assert worker.status_code == httpx.codes.OK
    assert worker.headers["content-type"].startswith("text/javascript")


def test_page_takes_its_settings_from_the_fragment_and_clears_the_address_bar(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)

    assert "token=" not in page.url
    stored = page.evaluate(
        "['Token', 'Lot', 'Device'].map((k) => localStorage.getItem(`tapledger.attendant${k}`))"
    )
    assert stored == [STUB_TOKEN, LOT_ID, DEVICE]
    expect(page.locator("#where")).to_have_text(f"lot {LOT_ID} · handheld {DEVICE}")
    expect(page.locator("#scan-input")).to_be_focused()


def test_page_without_a_token_asks_for_one_and_sends_nothing(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = handheld.new_page()
    page.goto(f"{site.base_url}/attendant")

    expect(page.locator("#settings-form")).to_be_visible()
    expect(page.locator("#action-form")).to_be_hidden()
    page.fill("#token-input", STUB_TOKEN)
    page.fill("#lot-input", LOT_ID)
    page.fill("#device-input", DEVICE)
    page.click("#settings-form button[type=submit]")

    expect(page.locator("#action-form")).to_be_visible()
    expect(page.locator("#sessions-empty")).to_be_visible()
    assert [sent.path for sent in stub.posts()] == []


# ---------------------------------------------------------------- starting and ending (stubbed)


def test_a_scanned_code_then_enter_starts_a_session_with_the_handhelds_own_id(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)
    uncaught: list[str] = []
    page.on("pageerror", lambda error: uncaught.append(str(error)))

    scan_and_start(page, STUB_CODE, "29a 123 45")

    expect_result(page, "ok", STARTED)
    assert uncaught == []
    [start] = stub.posts()
    assert start.key == f"handheld-{DEVICE}-1"
    assert start.body is not None
    assert start.body["start_id"] == start.key
    assert start.body["code"] == STUB_CODE
    assert (start.body["lot_id"], start.body["vehicle_class"]) == (LOT_ID, "car")
    assert start.body["quote_id"] is None
    shown = clock_in_hanoi(start.body["paid_until"])
    expect(page.locator("#result-title")).to_have_text(f"Started {PLATE}, paid until {shown}")
    expect(page.locator("#scan-input")).to_have_value("")
    expect(page.locator("#scan-input")).to_be_focused()


def test_start_asks_for_the_chosen_paid_time(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)
    page.click("label[for=paid-240]")
    before = time.time()

    scan_and_start(page, STUB_CODE, PLATE, vehicle_class="motorbike")

    expect_result(page, "ok", STARTED)
    [start] = stub.posts()
    assert start.body is not None
    paid_for_s = datetime.fromisoformat(start.body["paid_until"]).timestamp() - before
    assert 4 * 3600 - 2 <= paid_for_s <= 4 * 3600 + 2
    assert start.body["vehicle_class"] == "motorbike"


def test_a_refused_start_shows_red_with_the_problem_code_and_detail(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)
    scan_and_start(page, STUB_CODE, PLATE)
    expect_result(page, "ok", STARTED)

    scan_and_start(page, STUB_CODE, PLATE)

    expect_result(page, "refused", "session_already_open")
    expect(page.locator("#result")).to_have_attribute("data-code", "session_already_open")
    expect(page.locator("#result-detail")).to_contain_text("already has an open session")
    expect_queued(page, 0)


def test_a_scan_that_is_not_a_tl1_code_is_refused_on_the_handheld(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)

    scan_and_start(page, "https://example.com/not-a-ticket", PLATE)

    expect_result(page, "refused", "code_not_tl1")
    assert stub.posts() == []


def test_start_without_a_plate_is_refused_on_the_handheld_and_keeps_the_code(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)

    page.click("#start")

    expect_result(page, "refused", "plate_missing")
    scan_and_start(page, STUB_CODE, "")
    expect(page.locator("#plate-input")).to_be_focused()
    expect(page.locator("#scan-input")).to_have_value(STUB_CODE)
    page.locator("#plate-input").fill(PLATE)
    page.locator("#plate-input").press("Enter")
    expect_result(page, "ok", STARTED)
    assert len(stub.posts()) == 1


def test_end_finds_the_plates_open_session_and_ends_it(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)
    scan_and_start(page, STUB_CODE, PLATE)
    expect_result(page, "ok", STARTED)

    end_plate(page, "29A12345")

    expect_result(page, "ok", f"Ended {PLATE}")
    expect(page.locator("#result-detail")).to_have_text("Fee 25.000 ₫")
    lookup = [sent for sent in stub.sent if sent.path.endswith("/enforcement")]
    assert [sent.query for sent in lookup] == [{"lot_id": LOT_ID, "plate": "29A12345"}]
    end = stub.posts()[-1]
    assert end.path == "/v1/parking/sessions/ps-1/end"
    assert end.body is not None
    assert end.body["end_id"] == f"handheld-{DEVICE}-2"
    # The time the attendant pressed End, so an end sent late is priced up to then.
    assert datetime.fromisoformat(end.body["ended_at"]).tzinfo is not None
    assert end.key == f"handheld-{DEVICE}-2"
    expect(page.locator("#sessions li")).to_have_count(0)


def test_end_of_a_plate_without_an_open_session_is_refused(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)

    end_plate(page, PLATE)

    expect_result(page, "refused", "no_open_session")
    expect_queued(page, 0)
    assert stub.posts() == []


def test_the_lots_open_sessions_are_listed_with_the_expired_ones_marked(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)
    scan_and_start(page, STUB_CODE, PLATE)
    expect_result(page, "ok", STARTED)
    stub.sessions["ps-1"]["paid_until"] = "2020-01-01T00:00:00+00:00"

    scan_and_start(page, STUB_CODE, OTHER_PLATE, vehicle_class="large")
    expect_result(page, "ok", STARTED)

    rows = page.locator("#sessions li")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator(".plate")).to_have_text(OTHER_PLATE)
    expect(rows.nth(0).locator(".class")).to_have_text("Large")
    expect(rows.nth(0).locator(".until")).to_have_text(re.compile(r"^until \d\d:\d\d$"))
    expect(rows.nth(1).locator(".plate")).to_have_text(PLATE)
    expect(rows.nth(1)).to_have_class("expired")
    expect(rows.nth(1).locator(".until")).to_have_text("expired 07:00")
    expect(page.locator("#sessions-count")).to_have_text("(2)")


# ---------------------------------------------------------------- the outbox (stubbed)


def test_a_start_made_offline_is_queued_then_sent_once_when_back_online(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)
    set_offline(handheld, stub, True)

    scan_and_start(page, STUB_CODE, PLATE)

    expect_queued(page, 1)
    expect(page.locator("#queue")).to_have_text("offline — 1 queued")
    expect(page.locator("#result")).to_have_attribute("data-outcome", "queued")
    set_offline(handheld, stub, False)
    expect_result(page, "ok", STARTED)
    expect_queued(page, 0)
    assert len(stub.sessions) == 1
    assert stub.by_key == {f"handheld-{DEVICE}-1": 1}


def test_an_applied_start_whose_answer_was_lost_is_sent_again_and_applied_once(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)
    stub.losing_next_answers = 1

    scan_and_start(page, STUB_CODE, PLATE)

    expect_queued(page, 1)
    expect(page.locator("#queue")).to_have_text("offline — 1 queued")
    expect_result(page, "ok", STARTED, timeout_ms=REPLAY_WAIT_MS)  # the replay, by timer
    expect_queued(page, 0)
    assert len(stub.sessions) == 1
    assert stub.by_key == {f"handheld-{DEVICE}-1": 2}
    first, second = stub.posts()
    assert first.body == second.body


def test_a_server_error_keeps_the_action_queued_and_a_refusal_removes_it(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)
    stub.failing_next = 1
    stub.refused_codes[STUB_CODE] = "code_expired"

    scan_and_start(page, STUB_CODE, PLATE)

    expect_queued(page, 1)
    expect_result(page, "refused", "code_expired", timeout_ms=REPLAY_WAIT_MS)
    expect_queued(page, 0)
    assert stub.by_key == {f"handheld-{DEVICE}-1": 2}
    assert stub.sessions == {}
    expect(page.locator("#recent li")).to_have_text([f"Start {PLATE} — code_expired"])


def test_queued_actions_are_replayed_in_sequence_order(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)
    set_offline(handheld, stub, True)

    scan_and_start(page, STUB_CODE, PLATE)
    scan_and_start(page, STUB_CODE, OTHER_PLATE)
    expect_queued(page, 2)
    end_plate(page, PLATE)
    scan_and_start(page, STUB_CODE, THIRD_PLATE)
    expect_queued(page, 4)
    set_offline(handheld, stub, False)

    expect_queued(page, 0)
    posts = stub.posts()
    assert [sent.key for sent in posts] == [f"handheld-{DEVICE}-{seq}" for seq in (1, 2, 3, 4)]
    assert [sent.path for sent in posts][2] == "/v1/parking/sessions/ps-1/end"
    assert sorted(s["plate_display"] for s in stub.open_sessions(LOT_ID)) == [
        THIRD_PLATE,
        OTHER_PLATE,
    ]
    expect(page.locator("#recent li")).to_have_count(4)


def test_an_end_queued_offline_finds_its_session_once_and_keeps_it_across_a_lost_answer(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)
    scan_and_start(page, STUB_CODE, PLATE)
    expect_result(page, "ok", STARTED)
    set_offline(handheld, stub, True)
    end_plate(page, PLATE)
    expect_queued(page, 1)
    stub.losing_next_answers = 1

    set_offline(handheld, stub, False)

    expect_result(page, "ok", f"Ended {PLATE}")
    expect_queued(page, 0)
    lookups = [sent for sent in stub.sent if sent.path.endswith("/enforcement")]
    assert len(lookups) == 1, "the replay looked the session up again instead of keeping it"
    assert stub.by_key[f"handheld-{DEVICE}-2"] == 2
    assert stub.sessions["ps-1"]["state"] == "ended"


def test_the_outbox_and_the_sequence_survive_a_reload(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)
    keys = idempotency_keys(page)
    scan_and_start(page, STUB_CODE, PLATE)
    expect_result(page, "ok", STARTED)
    stub.down = True
    scan_and_start(page, STUB_CODE, OTHER_PLATE)
    expect_queued(page, 1)

    page.reload()

    expect_queued(page, 1)
    expect(page.locator("#queue")).to_have_attribute("data-last-seq", "2")
    stub.down = False
    scan_and_start(page, STUB_CODE, THIRD_PLATE)
    # The third start's own answer, not only an empty queue: the queue may be empty a moment
    # before the third action is written to it.
    expect_result(page, "ok", re.compile(rf"^Started {re.escape(THIRD_PLATE)}, paid until "))
    expect_queued(page, 0)
    # Seq 2 was tried while the stub was down, perhaps more than once; it got through once.
    assert list(dict.fromkeys(keys)) == [f"handheld-{DEVICE}-{seq}" for seq in (1, 2, 3)]
    assert stub.by_key == {f"handheld-{DEVICE}-{seq}": 1 for seq in (1, 2, 3)}
    assert len(stub.open_sessions(LOT_ID)) == 3


def test_page_opens_without_a_network_once_it_was_opened_with_one(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)
    expect_kept_for_offline(page)
    set_offline(handheld, stub, True)

    page.reload()

    wait_until_settled(page)
    expect(page.locator("#queue")).to_have_text("offline — 0 queued")
    expect(page.locator("#action-form")).to_be_visible()
    scan_and_start(page, STUB_CODE, PLATE)
    expect_queued(page, 1)


def test_a_full_outbox_refuses_a_new_action_and_keeps_what_it_holds(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)
    stub.down = True
    outbox_max = page.evaluate(
        """async (plate) => {
            const outbox = await import("/static/attendant-outbox.js");
            for (let i = 0; i < outbox.OUTBOX_ACTIONS_MAX; i += 1) {
                await outbox.enqueue("h01", { kind: "end", plate, lot: "hk-ly-thai-to" });
            }
            return outbox.OUTBOX_ACTIONS_MAX;
        }""",
        PLATE,
    )

    scan_and_start(page, STUB_CODE, OTHER_PLATE)

    expect_result(page, "refused", "outbox_full")
    expect(page.locator("#result-detail")).to_contain_text(f"Start {OTHER_PLATE} was not recorded")
    expect_queued(page, outbox_max)
    expect(page.locator("#queue")).to_have_attribute("data-last-seq", str(outbox_max))


def test_a_refused_token_keeps_the_action_queued_and_asks_for_another(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)
    stub.token = "tlk_the_rotated_one"

    scan_and_start(page, STUB_CODE, PLATE)

    expect(page.locator("#settings-form")).to_be_visible()
    expect_queued(page, 1)
    assert stub.sessions == {}
    page.fill("#token-input", stub.token)
    page.click("#settings-form button[type=submit]")
    expect_queued(page, 0)
    assert len(stub.sessions) == 1


def test_page_formats_clock_times_and_paid_until_instants(
    site: Site, handheld: BrowserContext, stub: ParkingStub
) -> None:
    page = open_page(handheld, site.base_url, STUB_TOKEN)
    formatted = page.evaluate(
        """async () => {
            const page = await import("/static/attendant.js");
            const outbox = await import("/static/attendant-outbox.js");
            return [
                page.formatClock("2026-12-06T03:00:00+00:00"),
                page.paidUntil(Date.UTC(2026, 11, 6, 2, 59, 30, 999), 120),
                outbox.actionId("h01", 42),
            ];
        }"""
    )
    assert formatted == ["10:00", "2026-12-06T04:59:30+00:00", "handheld-h01-42"]


# ---------------------------------------------------------------- on the real parking routes


@dataclass(frozen=True)
class Attendant:
    token: str
    device: str


def attendant_on_the_server(site: Site) -> Attendant:
    """An operator and a lot through the API (repeats answer 200), and an operator token."""
    operator = {"operator_id": OPERATOR_ID, "name": "iParking Hà Nội"}
    made = site.client.post("/v1/parking/operators", json=operator, headers=ADMIN)
    assert made.status_code in (200, 201), f"POST /v1/parking/operators: {made.text}"
    lot = {
        "lot_id": LOT_ID,
        "operator_id": OPERATOR_ID,
        "name": "Lý Thái Tổ",
        "address": "Lý Thái Tổ, Hoàn Kiếm",
        "lat": 21.0285,
        "lon": 105.8542,
        "opening_hours": None,
        "capacity": {"motorbike": 120, "car": 20, "large": 2},
        "table_id": RATE_TABLE_ID,
    }
    made = site.client.post("/v1/parking/lots", json=lot, headers=ADMIN)
    assert made.status_code in (200, 201), f"POST /v1/parking/lots: {made.text}"
    issued = site.client.post("/v1/tokens", json={"role": "operator"}, headers=ADMIN)
    assert issued.status_code == httpx.codes.CREATED, issued.text
    # A device of its own per test: request ids are kept by the server for good.
    return Attendant(issued.json()["token"], f"h-{uuid4().hex[:8]}")


# Older than a code's freshness window: the validator's and the backend's checks call it stale.
STALE_CODE_AGE_S = 600


def rider_code(site: Site) -> str:
    """A code a rider's phone signed just now, on an account with money for the hold."""
    account_id, phone = rider_with_phone(site.client)
    top_up = {"amount_vnd": TOP_UP_VND, "payment_reference": f"web-{account_id}"}
    topped = site.client.post(f"/v1/accounts/{account_id}/top-ups", json=top_up, headers=ADMIN)
    assert topped.status_code == httpx.codes.CREATED, topped.text
    return rider_code_of(phone)


def rider_code_of(phone: Phone, counter: int = 1) -> str:
    return phone.code(int(time.time()) - 1, counter)


def open_sessions_once_seen(site: Site, plate_display: str, count: int) -> list[dict[str, Any]]:
    """The plate's open sessions once the sessions' view (a projection, a moment behind the
    store) shows `count` of them."""
    wait_until(
        lambda: len(open_sessions_of(site, plate_display)) == count,
        VIEW_WAIT_S,
        lambda: f"{plate_display}: {open_sessions_of(site, plate_display)}, not {count} open",
    )
    return open_sessions_of(site, plate_display)


def open_sessions_of(site: Site, plate_display: str) -> list[dict[str, Any]]:
    answer = site.client.get(
        "/v1/parking/sessions", params={"lot_id": LOT_ID, "state": "open"}, headers=ADMIN
    )
    assert answer.status_code == httpx.codes.OK, answer.text
    body = answer.json()
    sessions: list[dict[str, Any]] = body if isinstance(body, list) else body["items"]
    return [s for s in sessions if s["plate_display"] == plate_display]


def unique_plate() -> str:
    number = uuid4().int % 100_000
    return f"29A-{number // 100:03d}.{number % 100:02d}"


def test_a_scanned_code_starts_a_session_on_the_server(
    site: Site, handheld: BrowserContext
) -> None:
    attendant = attendant_on_the_server(site)
    plate = unique_plate()
    page = open_page(handheld, site.base_url, attendant.token, attendant.device)

    scan_and_start(page, rider_code(site), plate)

    expect_result(page, "ok", STARTED)
    [session] = open_sessions_once_seen(site, plate, 1)
    assert session["started_by"] == "attendant"
    assert session["vehicle_class"] == "car"
    shown = clock_in_hanoi(session["paid_until"])
    expect(page.locator("#result-title")).to_have_text(f"Started {plate}, paid until {shown}")


def test_a_refusal_shows_red_with_its_code_on_the_server(
    site: Site, handheld: BrowserContext
) -> None:
    attendant = attendant_on_the_server(site)
    plate = unique_plate()
    page = open_page(handheld, site.base_url, attendant.token, attendant.device)
    scan_and_start(page, rider_code(site), plate)
    expect_result(page, "ok", STARTED)

    scan_and_start(page, rider_code(site), plate)

    expect_result(page, "refused", "session_already_open")
    expect_queued(page, 0)
    assert len(open_sessions_once_seen(site, plate, 1)) == 1


def test_an_expired_code_shows_red_with_its_reason_on_the_server(
    site: Site, handheld: BrowserContext
) -> None:
    attendant = attendant_on_the_server(site)
    account_id, phone = rider_with_phone(site.client)
    page = open_page(handheld, site.base_url, attendant.token, attendant.device)

    scan_and_start(page, phone.code(int(time.time()) - STALE_CODE_AGE_S, 1), unique_plate())

    expect_result(page, "refused", "code_stale")
    expect_queued(page, 0)
    assert site.client.get(f"/v1/accounts/{account_id}", headers=ADMIN).json()["pending_vnd"] == 0


def test_three_actions_made_offline_are_each_applied_once_when_back_online(
    site: Site, handheld: BrowserContext
) -> None:
    attendant = attendant_on_the_server(site)
    first, second, third = unique_plate(), unique_plate(), unique_plate()
    page = open_page(handheld, site.base_url, attendant.token, attendant.device)
    scan_and_start(page, rider_code(site), first)
    expect_result(page, "ok", STARTED)
    handheld.set_offline(True)

    scan_and_start(page, rider_code(site), second)
    end_plate(page, first)
    scan_and_start(page, rider_code(site), third)
    expect(page.locator("#queue")).to_have_text("offline — 3 queued")
    handheld.set_offline(False)

    expect_queued(page, 0)
    # Enforcement reads the sessions themselves, so it needs no wait for the views.
    assert [status_of(site, plate) for plate in (first, second, third)] == [
        "unpaid",
        "paid",
        "paid",
    ]


def status_of(site: Site, plate: str) -> str:
    answer = site.client.get(
        "/v1/parking/enforcement", params={"lot_id": LOT_ID, "plate": plate}, headers=ADMIN
    )
    assert answer.status_code == httpx.codes.OK, answer.text
    status: str = answer.json()["status"]
    return status


def test_a_start_made_offline_is_applied_once_on_the_server_when_back_online(
    site: Site, handheld: BrowserContext
) -> None:
    attendant = attendant_on_the_server(site)
    plate = unique_plate()
    page = open_page(handheld, site.base_url, attendant.token, attendant.device)
    handheld.set_offline(True)

    scan_and_start(page, rider_code(site), plate)
    expect(page.locator("#queue")).to_have_text("offline — 1 queued")
    handheld.set_offline(False)

    expect_result(page, "ok", STARTED)
    expect_queued(page, 0)
    assert len(open_sessions_once_seen(site, plate, 1)) == 1


def test_the_outbox_survives_a_reload_while_offline_on_the_server(
    site: Site, handheld: BrowserContext
) -> None:
    attendant = attendant_on_the_server(site)
    plate = unique_plate()
    page = open_page(handheld, site.base_url, attendant.token, attendant.device)
    keys = idempotency_keys(page)
    expect_kept_for_offline(page)
    handheld.set_offline(True)
    scan_and_start(page, rider_code(site), plate)
    expect_queued(page, 1)

    page.reload()
    expect_queued(page, 1)
    handheld.set_offline(False)

    expect_result(page, "ok", STARTED)
    expect_queued(page, 0)
    assert len(open_sessions_once_seen(site, plate, 1)) == 1
    assert set(keys) == {f"handheld-{attendant.device}-1"}


def test_the_sequence_keeps_counting_across_reloads_on_the_server(
    site: Site, handheld: BrowserContext
) -> None:
    attendant = attendant_on_the_server(site)
    page = open_page(handheld, site.base_url, attendant.token, attendant.device)
    keys = idempotency_keys(page)
    scan_and_start(page, rider_code(site), unique_plate())
    expect_result(page, "ok", STARTED)

    page.reload()
    wait_until_settled(page)
    scan_and_start(page, rider_code(site), unique_plate())

    expect_result(page, "ok", STARTED)
    assert keys == [f"handheld-{attendant.device}-{seq}" for seq in (1, 2)]


def test_the_lots_sessions_list_shows_the_started_session_on_the_server(
    site: Site, handheld: BrowserContext
) -> None:
    attendant = attendant_on_the_server(site)
    plate = unique_plate()
    page = open_page(handheld, site.base_url, attendant.token, attendant.device)

    scan_and_start(page, rider_code(site), plate, vehicle_class="motorbike")

    expect_result(page, "ok", STARTED)
    row = page.locator("#sessions li", has_text=plate)
    expect(row).to_have_count(1)
    expect(row.locator(".class")).to_have_text("Motorbike")
    expect(row.locator(".until")).to_have_text(re.compile(r"^until \d\d:\d\d$"))


def test_end_ends_the_plates_open_session_on_the_server(
    site: Site, handheld: BrowserContext
) -> None:
    attendant = attendant_on_the_server(site)
    plate = unique_plate()
    page = open_page(handheld, site.base_url, attendant.token, attendant.device)
    scan_and_start(page, rider_code(site), plate)
    expect_result(page, "ok", STARTED)

    end_plate(page, plate)

    expect_result(page, "ok", f"Ended {plate}")
    expect(page.locator("#result-detail")).to_have_text(re.compile(r"^Fee [\d.]+ ₫"))
    assert open_sessions_once_seen(site, plate, 0) == []
