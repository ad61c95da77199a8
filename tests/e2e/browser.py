"""Where the Chromium of the browser tier is, and what to do when it is missing.

Like PostgreSQL and Redis in `tests.services`: on a laptop a missing browser skips the tier with a
loud reason; under CI (`CI=true`) the same absence fails the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.services import in_ci

CHROMIUM_DEFAULT = "/usr/bin/chromium"
# Flags for a headless browser in a container: no sandbox (no user namespaces there), no GPU,
# /tmp instead of a small /dev/shm, and nothing that reaches for the network on its own.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)

# Playwright's `expect` waits 5 s for its condition by default; on a shared, busy CI machine a page
# may take longer to show what it will show. Every browser test's assertions wait up to this.
EXPECT_TIMEOUT_MS = 15_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)


def chromium_executable() -> str:
    """The Chromium binary of the browser tier (`TAPLEDGER_TEST_CHROMIUM`)."""
    path = os.environ.get("TAPLEDGER_TEST_CHROMIUM", CHROMIUM_DEFAULT)
    if not (Path(path).is_file() and os.access(path, os.X_OK)):
        message = f"Chromium is not an executable file at {path}"
        if in_ci():
            pytest.fail(f"{message}; under CI=true every tier must run", pytrace=False)
        pytest.skip(f"SKIPPED TIER: {message}")
    return path
