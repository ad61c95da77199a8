"""The device's health report and its deny-list long poll, against a fake backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.doubles import SecondsClock
from tests.validator_fakes import NOW, FakeBackend, phone
from validators.deny_watch import DenyListWatcher
from validators.device import Device
from validators.trust import TrustStore

SYNC_INTERVAL_S = 60
MONOTONIC_START_S = 1000.0
# A long poll in these tests waits at most this long; the fake answers as soon as a card is listed.
WAIT_S = 5
CONDITION_DEADLINE_S = 10.0
POLL_S = 0.01


def device(backend: FakeBackend, state_dir: Path, clock: SecondsClock) -> Device:
    return Device(
        backend,
        state_dir,
        validator_id=backend.validator_id,
        sync_interval_s=SYNC_INTERVAL_S,
        clock=clock,
        monotonic=SecondsClock(MONOTONIC_START_S),
        deny_wait_s=WAIT_S,
    )


def wait_until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + CONDITION_DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(POLL_S)


def test_each_sync_reports_the_outbox_backlog_and_the_trust_it_decides_with(
    tmp_path: Path,
) -> None:
    backend, clock = FakeBackend(), SecondsClock(NOW)
    gate = device(backend, tmp_path, clock)
    gate.sync()
    gate.gate.present_qr(phone("lan").code(NOW))
    clock.advance(90)
    gate.sync()
    first, second = backend.health_reports
    assert (first["outbox_depth"], first["oldest_tap_age_s"]) == (0, None)
    assert (second["outbox_depth"], second["oldest_tap_age_s"]) == (1, 90)
    assert second["last_sync_at"] == NOW + 90
    assert (second["keys_version"], second["keys_etag"]) == (1, '"keys-1"')
    assert (second["deny_version"], second["config_etag"]) == (0, '"config-0"')
    assert second["last_upload_at"] is None
    gate.step()  # uploads the tap
    gate.sync()
    assert backend.health_reports[-1]["last_upload_at"] == NOW + 90
    assert backend.health_reports[-1]["outbox_depth"] == 0


def test_the_clock_offset_measured_at_one_report_travels_with_the_next(tmp_path: Path) -> None:
    backend, clock = FakeBackend(server_time_ms=NOW * 1000 - 2_500), SecondsClock(NOW)
    gate = device(backend, tmp_path, clock)
    gate.sync()
    gate.sync()
    first, second = backend.health_reports
    assert first["clock_offset_ms"] is None  # nothing measured yet
    assert second["clock_offset_ms"] == 2_500  # the device's clock runs 2.5 s ahead
    assert second["sent_at_ms"] == NOW * 1000


def test_a_health_report_the_backend_refuses_leaves_the_sync_done(tmp_path: Path) -> None:
    backend, clock = FakeBackend(health_down=True), SecondsClock(NOW)
    errors: list[str] = []
    gate = Device(
        backend,
        tmp_path,
        validator_id=backend.validator_id,
        sync_interval_s=SYNC_INTERVAL_S,
        clock=clock,
        on_error=lambda what, _error: errors.append(what),
    )
    assert gate.sync()
    assert gate.trust.keys is not None
    assert errors == ["health"]


def test_the_long_poll_brings_a_blocked_card_before_the_next_sync_and_saves_it(
    tmp_path: Path,
) -> None:
    backend, clock = FakeBackend(), SecondsClock(NOW)
    hoa = phone("hoa")
    gate = device(backend, tmp_path, clock)
    gate.sync()
    stop = threading.Event()
    loop = threading.Thread(target=gate.run, args=(stop,), daemon=True)
    loop.start()
    try:
        wait_until(lambda: backend.deny_polls and backend.deny_polls[-1][1] == WAIT_S, "a poll")
        backend.deny(hoa.card_id)
        wait_until(lambda: gate.trust.deny_version == 1, "the long poll's answer")
    finally:
        stop.set()
        gate.wake.set()
        backend.release_polls()
        loop.join(CONDITION_DEADLINE_S)
    assert gate.gate.present_qr(hoa.code(NOW)).reason == "card_denied"
    assert TrustStore(tmp_path).load().deny_version == 1  # a restart still refuses it


def test_offline_the_long_poll_fails_keeps_trying_and_catches_up_when_back() -> None:
    backend = FakeBackend(deny_list_down=True)
    hoa = phone("hoa")
    errors: list[str] = []
    pages: list[tuple[int, dict[str, Any]]] = []
    watcher = DenyListWatcher(
        backend,
        version=lambda: pages[-1][1]["version"] if pages else 0,
        apply=lambda since, page: pages.append((since, page)),
        wait_s=WAIT_S,
        on_error=lambda what, _error: errors.append(what),
        retry_s_initial=0.01,
    )
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(errors) >= 2, "a second attempt while offline")
        assert pages == []
        backend.deny(hoa.card_id)
        backend.deny_list_down = False
        wait_until(lambda: bool(pages), "the page once back online")
    finally:
        stop.set()
        backend.release_polls()
        thread.join(CONDITION_DEADLINE_S)
    assert set(errors) == {"deny-list"}
    assert [e["card_id"] for e in pages[0][1]["entries"]] == [str(hoa.card_id)]


def test_a_page_a_sync_overtook_is_dropped(tmp_path: Path) -> None:
    backend, clock = FakeBackend(), SecondsClock(NOW)
    lan, hoa = phone("lan"), phone("hoa")
    gate = device(backend, tmp_path, clock)
    gate.sync()
    stale_page = backend.deny_list(0)  # asked from version 0 ...
    backend.deny(lan.card_id)
    backend.deny(hoa.card_id)
    gate.sync()  # ... but a sync moved the device to version 2 meanwhile
    gate.apply_deny_page(0, stale_page)
    assert gate.trust.deny_version == 2
    assert gate.gate.present_qr(hoa.code(NOW)).reason == "card_denied"
