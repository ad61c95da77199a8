"""The backend's key set and deny list: reloaded every few seconds, in the background when the
verifier is given somewhere to do it, so a tap never waits for the reload's queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from tests.doubles import DenyList, SecondsClock
from ticketing.cards.application.card_issuer import PublishedKeys
from ticketing.taps.application.tap_verification import (
    TRUST_REFRESH_S,
    TRUST_STALE_INTERVALS_MAX,
    TapVerifier,
)

NOW = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
STALE_S = TRUST_REFRESH_S + 1


class Sources(DenyList):
    """Counts the loads of the key set; the deny list counts its own reads."""

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    def keys(self) -> PublishedKeys:
        self.loads += 1
        return PublishedKeys(keys={}, revoked=[], version=self.loads)


Spawned = list[Callable[[], None]]


def verifier(sources: Sources, clock: SecondsClock, spawned: Spawned | None) -> TapVerifier:
    return TapVerifier(
        keys=sources.keys,
        deny_list=sources,
        card_issued=lambda _: True,
        sam=None,
        clock=lambda: NOW,
        monotonic=clock,
        spawn=spawned.append if spawned is not None else None,
    )


def test_without_a_background_the_reload_happens_in_the_tap_that_finds_it_stale() -> None:
    sources, clock = Sources(), SecondsClock(1000.0)
    checker = verifier(sources, clock, spawned=None)
    checker.verify_qr("not a code", NOW)
    clock.advance(STALE_S)
    checker.verify_qr("not a code", NOW)
    assert sources.loads == 2


def test_a_stale_deny_list_keeps_serving_while_the_background_reload_runs() -> None:
    sources, clock = Sources(), SecondsClock(1000.0)
    spawned: Spawned = []
    checker = verifier(sources, clock, spawned)
    checker.verify_qr("not a code", NOW)
    assert sources.loads == 1
    clock.advance(STALE_S)
    checker.verify_qr("not a code", NOW)
    checker.verify_qr("not a code", NOW)
    assert sources.loads == 1  # nothing loaded in the tap's own thread
    assert len(spawned) == 1  # one reload asked for, however many taps found it stale
    spawned.pop()()
    assert sources.loads == 2
    checker.verify_qr("not a code", NOW)
    assert spawned == []  # fresh again


def test_a_key_set_too_stale_is_reloaded_before_the_tap_is_checked() -> None:
    sources, clock = Sources(), SecondsClock(1000.0)
    spawned: Spawned = []
    checker = verifier(sources, clock, spawned)
    checker.verify_qr("not a code", NOW)
    clock.advance(TRUST_REFRESH_S * TRUST_STALE_INTERVALS_MAX)
    checker.verify_qr("not a code", NOW)
    assert sources.loads == 2
    assert spawned == []
