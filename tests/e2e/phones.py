"""A phone's browser for the page tests: headless Chromium, a phone-sized context of its own,
and the page's console errors as they happen."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    sync_playwright,
)

from tests.e2e.browser import CHROMIUM_ARGS, chromium_executable

# A phone held upright (an iPhone 12 to 15's CSS size); two device pixels a CSS pixel.
PHONE_VIEWPORT: ViewportSize = {"width": 390, "height": 844}
PHONE_PIXEL_RATIO = 2
PAGE_TIMEOUT_MS = 15_000


@contextmanager
def chromium() -> Iterator[Browser]:
    """Chromium, headless; a missing binary skips (fails under CI), as `chromium_executable`."""
    executable = chromium_executable()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=list(CHROMIUM_ARGS), headless=True
        )
        yield launched
        launched.close()


@contextmanager
def fresh_phone(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh phone: its own localStorage and IndexedDB, so its own device key."""
    context = browser.new_context(
        viewport=PHONE_VIEWPORT,
        device_scale_factor=PHONE_PIXEL_RATIO,
        is_mobile=True,
        has_touch=True,
    )
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    yield context
    context.close()


def watch_for_errors(page: Page) -> list[str]:
    """Console errors and uncaught exceptions of the page, as they happen."""
    seen: list[str] = []

    def _on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.append(message.text)

    page.on("console", _on_console)
    page.on("pageerror", lambda error: seen.append(f"uncaught: {error}"))
    return seen


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
