"""The operators' clearing page (/operator) in a real Chromium, over a real server in this
process holding a closed day: the chart of a cycle is drawn, a file downloads, a reconciliation
shows its report, and an operator's page shows only that operator's lines, which the API
enforces whatever the page asks for."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    FilePayload,
    Page,
    expect,
    sync_playwright,
)

from tapledger.http.app import create_app
from tests.builders.parking import OPERATOR as PARKING
from tests.e2e.browser import CHROMIUM_ARGS, chromium_executable
from tests.e2e.clearing_site import BUS, DAY, METRO, closed_day_world, operator_token
from tests.e2e.in_process_server import served_app
from tests.e2e.riders import ADMIN

REQUEST_TIMEOUT_S = 30.0
PAGE_TIMEOUT_MS = 15_000
CYCLE = f"/v1/clearing/cycles/{DAY.isoformat()}"
ADMIN_TOKEN = ADMIN["Authorization"].removeprefix("Bearer ")


@dataclass
class Site:
    base_url: str
    client: httpx.Client
    metro_token: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A closed day, its cycle run, served by uvicorn in a thread."""
    data_dir = tmp_path_factory.mktemp("operator-page")
    with (
        closed_day_world(data_dir) as world,
        served_app(create_app(world.container, own_container=False), name="operator-page") as url,
        httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client,
    ):
        ran = client.post(f"{CYCLE}/run", headers=ADMIN)
        assert ran.status_code == 200, ran.text
        metro = operator_token(client, METRO)["Authorization"].removeprefix("Bearer ")
        yield Site(url, client, metro)


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
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 1000})
    opened.set_default_timeout(PAGE_TIMEOUT_MS)
    yield opened
    opened.close()


def open_page(context: BrowserContext, site: Site, token: str, problems: list[str]) -> Page:
    """The page with `token`, once it has shown the newest cycle; `problems` collects the
    page's console errors (a refused script or style among them) and uncaught exceptions."""
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{site.base_url}/operator#token={token}")
    expect(page.locator("#status")).to_have_text("Up to date.")
    return page


def drawn_pixels(page: Page) -> int:
    """Pixels of the chart's canvas that are not blank."""
    count: int = page.evaluate(
        """() => {
          const canvas = document.querySelector('#revenue-chart canvas');
          const pixels = canvas.getContext('2d')
            .getImageData(0, 0, canvas.width, canvas.height).data;
          let drawn = 0;
          for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) drawn += 1;
          return drawn;
        }"""
    )
    return count


def test_staff_see_the_closed_cycle_its_positions_and_its_revenue_chart(
    context: BrowserContext, site: Site
) -> None:
    problems: list[str] = []
    page = open_page(context, site, ADMIN_TOKEN, problems)

    row = page.locator(f"#cycles tr[data-day='{DAY.isoformat()}']")
    expect(row).to_contain_text("closed")
    expect(page.locator("#positions tr")).to_have_count(3)
    chart = page.locator("#revenue-chart")
    expect(chart).to_have_attribute("data-drawn", "true")
    expect(chart).to_have_attribute("data-points", "3")
    expect(chart).to_have_attribute("data-operators", ",".join(sorted([BUS, METRO, PARKING])))
    expect(chart.locator("canvas")).to_have_count(1)
    assert drawn_pixels(page) > 0
    assert problems == []


def test_an_operator_downloads_its_lines_file_from_the_page(
    context: BrowserContext, site: Site
) -> None:
    problems: list[str] = []
    page = open_page(context, site, site.metro_token, problems)
    files = page.locator("#files button")
    expect(files).to_have_count(2)

    with page.expect_download() as downloading:
        page.click(f"#files button[data-name='lines-{METRO}.csv']")

    saved = Path(downloading.value.path())
    expected = site.client.get(f"{CYCLE}/files/lines-{METRO}.csv", headers=ADMIN).content
    assert saved.read_bytes() == expected
    assert downloading.value.suggested_filename == f"{DAY.isoformat()}-lines-{METRO}.csv"
    assert problems == []


def test_an_operators_page_shows_only_its_own_lines_and_position(
    context: BrowserContext, site: Site
) -> None:
    problems: list[str] = []
    page = open_page(context, site, site.metro_token, problems)
    own_total = site.client.get(f"{CYCLE}/lines", params={"operator": METRO}, headers=ADMIN).json()[
        "total"
    ]

    expect(page.locator("#lines tr")).to_have_count(own_total)
    operators = page.locator("#lines tr").evaluate_all("rows => rows.map(r => r.dataset.operator)")
    assert set(operators) == {METRO}
    expect(page.locator("#positions tr")).to_have_count(1)
    expect(page.locator("#positions tr")).to_have_attribute("data-operator", METRO)
    expect(page.locator("#lines-operator")).to_be_disabled()
    assert problems == []


def test_an_operators_page_asking_the_api_for_anothers_lines_is_refused(
    context: BrowserContext, site: Site
) -> None:
    page = open_page(context, site, site.metro_token, [])

    status = page.evaluate(
        """async ([path, token]) => (await fetch(path, {
             headers: { Authorization: `Bearer ${token}` } })).status""",
        [f"{CYCLE}/lines?operator={BUS}", site.metro_token],
    )

    assert status == 403


def test_an_operator_uploads_its_file_and_reads_the_reconciliation(
    context: BrowserContext, site: Site
) -> None:
    page = open_page(context, site, site.metro_token, [])
    lines = site.client.get(f"{CYCLE}/lines", params={"operator": METRO}, headers=ADMIN).json()[
        "items"
    ]
    first = lines[0]
    text = f"transaction_id,amount_vnd\n{first['transaction_id']},{first['amount_vnd'] + 1000}\n"

    page.set_input_files(
        "#reconcile-file",
        files=[FilePayload(name="metro.csv", mimeType="text/csv", buffer=text.encode())],
    )
    page.click("#reconcile-form button[type='submit']")

    expect(page.locator("#report-summary")).to_have_attribute("data-matched", "false")
    expect(
        page.locator("#report-totals tr[data-outcome='amount_mismatch'] td").nth(1)
    ).to_have_text("1")
    row = page.locator("#report-rows tr").filter(has_text=first["transaction_id"])
    expect(row).to_have_attribute("data-outcome", "amount_mismatch")


def test_staff_see_the_fleet_of_validators_with_their_flags(
    context: BrowserContext, site: Site
) -> None:
    problems: list[str] = []
    fleet = site.client.get("/v1/validators", headers=ADMIN).json()["items"]
    page = open_page(context, site, ADMIN_TOKEN, problems)

    rows = page.locator("#fleet tr")
    expect(rows).to_have_count(len(fleet))
    first = fleet[0]
    row = page.locator(f"#fleet tr[data-validator='{first['validator_id']}']")
    expect(row).to_have_attribute("data-flags", ",".join(first["flags"]))
    assert first["flags"]  # registered, never reported: stale and offline
    expect(page.locator("#fleet-summary")).to_have_text(
        f"{len(fleet)} devices, {len(fleet)} flagged."
    )
    assert problems == []


def test_an_operators_page_has_no_fleet(context: BrowserContext, site: Site) -> None:
    problems: list[str] = []
    page = open_page(context, site, site.metro_token, problems)

    expect(page.locator("#fleet-section")).to_be_hidden()
    expect(page.locator("#fleet tr")).to_have_count(0)
    assert problems == []
