"""Following the deny list within seconds: a long poll, in its own thread of the device.

The thread asks `GET /v1/deny-list?since=<held version>&wait_s=25`; the backend answers as soon
as a card is listed after that version (or empty after 25 s), the device applies the entries and
asks again at once. So a card blocked in the backend is refused here about a second later,
while the sync every `sync_interval_s` still brings the keys and the config (and the deny list
too, should this thread be stuck). Offline, the request fails: the device keeps deciding with
the list it holds, retries after a growing pause, and the backend flags any tap it accepted of
a card listed meanwhile once it is uploaded (a disagreement, `GET /v1/taps/disagreements`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from validators.backend import Backend, BackendError
from validators.trust import DenyListTooLarge

DENY_WAIT_S_DEFAULT = 25
DENY_RETRY_S_INITIAL = 1.0
DENY_RETRY_S_MAX = 30.0
# An answer sooner than this with nothing in it (a backend that does not hold long polls) makes
# the thread pause this long, so it never spins.
DENY_POLL_PAUSE_S = 1.0

ApplyPage = Callable[[int, dict[str, Any]], None]


class DenyListWatcher:
    def __init__(
        self,
        backend: Backend,
        *,
        version: Callable[[], int],
        apply: ApplyPage,
        wait_s: int = DENY_WAIT_S_DEFAULT,
        monotonic: Callable[[], float] = time.monotonic,
        on_error: Callable[[str, Exception], None] = lambda _what, _error: None,
        retry_s_initial: float = DENY_RETRY_S_INITIAL,
    ) -> None:
        self._backend = backend
        self._version = version
        self._apply = apply
        self._wait_s = wait_s
        self._monotonic = monotonic
        self._on_error = on_error
        self._retry_s_initial = retry_s_initial

    def run(self, stop: threading.Event) -> None:
        """Long-polls until `stop` is set."""
        failures = 0
        while not stop.is_set():
            since = self._version()
            started = self._monotonic()
            try:
                page = self._backend.deny_list(since, wait_s=self._wait_s)
                self._apply(since, page)
            except (BackendError, DenyListTooLarge) as error:
                failures += 1
                self._on_error("deny-list", error)
                backoff_s = self._retry_s_initial * 2 ** min(failures - 1, 8)
                stop.wait(min(DENY_RETRY_S_MAX, backoff_s))
                continue
            failures = 0
            quick = self._monotonic() - started < DENY_POLL_PAUSE_S
            if quick and not page.get("entries") and not page.get("more"):
                stop.wait(DENY_POLL_PAUSE_S)
