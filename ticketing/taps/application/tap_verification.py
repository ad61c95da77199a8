"""The backend's second look at a tap: the QR code's signatures, or the card's session MAC.

A validator decides offline; the backend trusts none of it and checks again, at the tap's own
time, what a device cannot fake: a TL1 code (spec/QR.md, steps 1 to 11) against the issuer keys
and the deny list, and a card's MAC over the session transcript with the session key the SAM
derives from the master keys (spec/CARD.md). Step 12, the replay check, is not done here: across
validators, processes and retries it is the event store's uniqueness (`QrCodeUse`) that decides.

The key set and the deny list are read at most every `TRUST_REFRESH_S`, not per tap; news on
the invalidation channel (`invalidate`) makes a denied card or a changed key set count from the
very next tap, and the timer remains for news that was lost. A card on
the deny list refuses only the taps made after it was listed: a tap made offline before the
rider reported the card lost was a good ride.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from hardware.sam import KeyLevelNotHeld, Sam
from hardware.tlc1.constants import KeyLevel
from hardware.tlc1.terminal import SessionProof
from ticketing.cards.adapters.card_views import DenyListDelta
from ticketing.cards.application.card_issuer import PublishedKeys
from ticketing.cards.application.invalidation import (
    CardDenied,
    Invalidation,
    IssuerKeysChanged,
    MessagesMayBeLost,
)
from ticketing.shared.domain.invariants import require
from ticketing.taps.domain.tap import CardRefusal
from ticketing.tl1.certificate_cache import SharedCertificateCache
from ticketing.tl1.keyset import IssuerKeySet
from ticketing.tl1.replay import ReplayKey, ReplayWindow
from ticketing.tl1.verify import Decision, Verifier

# How stale the key set and the deny list may be when a tap is checked.
TRUST_REFRESH_S = 5.0
# Refreshed in the background, a stale key set and deny list keep serving while the new ones
# load, but never beyond this many refresh intervals: then the tap waits for the load.
TRUST_STALE_INTERVALS_MAX = 6
# Deny-list pages read in one refresh; the rest is read at the next one.
DENY_LIST_PAGES_PER_REFRESH_MAX = 20
# Serials known to be issued, remembered (an issued serial stays issued: a lost card is denied,
# never unissued), so a card's taps cost no lookup after its first; cleared when full.
ISSUED_SERIALS_REMEMBERED_MAX = 200_000
# The decisions reached only once the code's device signature verified (spec/QR.md, steps 9 to
# 11): the phone made this very code, so its sighting uses it up whatever else is wrong with it.
SIGNED_DECISIONS = frozenset({Decision.ACCEPTED, Decision.CODE_STALE, Decision.CODE_FROM_FUTURE})

# Denials pushed before this process first read its trust, kept for that first read.
DENIALS_PENDING_MAX = 10_000


class DenyListReader(Protocol):
    def deny_list_since(self, since: int, *, now: datetime) -> DenyListDelta: ...


@dataclass(frozen=True)
class QrVerdict:
    """The backend's decision on one code, and what the code says when it parses."""

    refusal_reason: str | None  # None: accepted
    card_id: UUID | None = None
    generated_at: int | None = None
    counter: int | None = None
    # The device signature verified: the code is genuine, and this sighting of it uses it up.
    signed: bool = False


@dataclass(frozen=True)
class _Trust:
    keys: IssuerKeySet
    # Card id or serial -> (when it was listed, when the entry expires). Dicts, because a
    # pushed denial is added in place (under the verifier's lock; readers only `get`).
    denied_cards: dict[UUID, tuple[datetime, datetime]]
    denied_serials: dict[str, tuple[datetime, datetime]]
    deny_version: int
    loaded_at_s: float


class _DeniedAt:
    """The deny list as it stood at one moment: what the `Verifier` consults for one tap."""

    def __init__(self, listed: Mapping[UUID, tuple[datetime, datetime]], at: datetime) -> None:
        self._listed = listed
        self._at = at

    def __contains__(self, card_id: object) -> bool:
        entry = self._listed.get(card_id) if isinstance(card_id, UUID) else None
        return entry is not None and entry[0] <= self._at


class _NoReplayMemory(ReplayWindow):
    """Remembers nothing: a retried upload must find its codes unused, and the store's
    `QrCodeUse` already refuses a second use across every process."""

    def seen(self, key: ReplayKey, now: int) -> bool:  # noqa: ARG002
        return False

    def remember(self, key: ReplayKey, now: int) -> None:  # noqa: ARG002
        return None


class TapVerifier:
    """Re-verifies taps; safe to share between the threads of one process."""

    def __init__(
        self,
        *,
        keys: Callable[[], PublishedKeys],
        deny_list: DenyListReader,
        card_issued: Callable[[str], bool],
        sam: Sam | None,
        clock: Callable[[], datetime],
        refresh_s: float = TRUST_REFRESH_S,
        monotonic: Callable[[], float] = time.monotonic,
        spawn: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        """With `spawn` (e.g. `start_thread`), a stale key set and deny list are reloaded by
        what it starts, while taps go on being checked against them: an event loop that
        verifies taps is then never blocked by the reload's queries."""
        require(refresh_s >= 0, "a refresh interval is a duration")
        self._keys_source = keys
        self._deny_source = deny_list
        self._card_issued = card_issued
        self._sam = sam
        self._clock = clock
        self._refresh_s = refresh_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._trust: _Trust | None = None
        self._spawn = spawn
        self._reloading = False
        # Guards `_reloading` only: never held while loading, so a tap never waits on it.
        self._reload_flag = threading.Lock()
        self._issued: set[str] = set()
        # Set by `invalidate`: the next tap reads the key set and deny list before it is checked.
        self._must_reload = False
        self._denials_pending: list[CardDenied] = []
        self._certificates = SharedCertificateCache()
        # A verifier per thread (it holds the key set and deny list of the tap at hand); the
        # certificates they have checked are shared.
        self._local = threading.local()

    def verify_qr(self, text: str, at: datetime) -> QrVerdict:
        trust = self._current()
        verifier = self._verifier()
        verifier.keys = trust.keys
        verifier.deny_list = _DeniedAt(trust.denied_cards, at)
        verification = verifier.verify(text, int(at.timestamp()))
        code = verification.code
        reason = None if verification.accepted else verification.decision.value
        if code is None:
            return QrVerdict(reason)
        signed = verification.decision in SIGNED_DECISIONS
        return QrVerdict(
            reason, code.certificate.card_id, code.generated_at, code.counter, signed=signed
        )

    def verify_card(
        self, serial: str | None, proof: SessionProof | None, at: datetime
    ) -> str | None:
        """The refusal reason of a card tap, or None when the card proved the session."""
        if proof is None or serial is None or proof.serial.hex() != serial:
            return CardRefusal.NO_CARD_PROOF.value
        if self._sam is None:
            return CardRefusal.SAM_UNAVAILABLE.value
        if not self._is_issued(serial):
            return CardRefusal.UNKNOWN_CARD.value
        entry = self._current().denied_serials.get(serial)
        if entry is not None and entry[0] <= at:
            return CardRefusal.CARD_DENIED.value
        try:
            session = self._sam.open_session(
                serial=proof.serial,
                level=KeyLevel(proof.level),
                terminal_challenge=proof.terminal_challenge,
                card_challenge=proof.card_challenge,
                counter=proof.counter,
            )
        except KeyLevelNotHeld:
            return CardRefusal.KEY_LEVEL_NOT_HELD.value
        if not session.card_mac_is_valid(proof.transcript, proof.card_mac):
            return CardRefusal.BAD_CARD_MAC.value
        return None

    def invalidate(self, message: Invalidation) -> None:
        """News from the invalidation channel: a denied card is refused from the next tap on,
        in this process, without waiting for the deny list's read model; a changed key set, or
        news that may have been lost, makes the next tap read the trust again first."""
        if isinstance(message, CardDenied):
            self._deny(message)
        elif isinstance(message, IssuerKeysChanged | MessagesMayBeLost):
            self._must_reload = True

    def _deny(self, denied: CardDenied) -> None:
        listed = _listing(denied.listed_at, denied.until)
        with self._lock:
            trust = self._trust
            if trust is None:
                if len(self._denials_pending) < DENIALS_PENDING_MAX:
                    self._denials_pending.append(denied)
                return
            trust.denied_cards[denied.card_id] = listed
            if denied.serial:
                trust.denied_serials[denied.serial] = listed

    def _is_issued(self, serial: str) -> bool:
        if serial in self._issued:
            return True
        if not self._card_issued(serial):
            return False
        if len(self._issued) >= ISSUED_SERIALS_REMEMBERED_MAX:
            self._issued.clear()
        self._issued.add(serial)
        return True

    def _verifier(self) -> Verifier:
        verifier: Verifier | None = getattr(self._local, "verifier", None)
        if verifier is None:
            verifier = Verifier(
                IssuerKeySet({}),
                frozenset(),
                replay_window=_NoReplayMemory(),
                certificate_cache=self._certificates,
            )
            self._local.verifier = verifier
        return verifier

    def _current(self) -> _Trust:
        trust = self._trust
        if trust is not None and not self._must_reload:
            age_s = self._monotonic() - trust.loaded_at_s
            if age_s < self._refresh_s:
                return trust
            if self._spawn is not None and age_s < self._refresh_s * TRUST_STALE_INTERVALS_MAX:
                self._reload_in_background()
                return trust
        with self._lock:
            trust = self._trust
            if (
                trust is None
                or self._must_reload
                or self._monotonic() - trust.loaded_at_s >= self._refresh_s
            ):
                # Cleared before reading, so news arriving during the read asks for another.
                self._must_reload = False
                try:
                    trust = self._load(trust)
                except BaseException:
                    self._must_reload = True
                    raise
                self._trust = trust
            return trust

    def _reload_in_background(self) -> None:
        with self._reload_flag:
            if self._reloading or self._spawn is None:
                return
            self._reloading = True
        self._spawn(self._reload)

    def _reload(self) -> None:
        try:
            with self._lock:
                self._trust = self._load(self._trust)
        finally:
            with self._reload_flag:
                self._reloading = False

    def _load(self, previous: _Trust | None) -> _Trust:
        published = self._keys_source()
        keys = IssuerKeySet.from_bytes(
            {key_id: hex_key for key_id, (hex_key, _) in published.keys.items()},
            revoked=published.revoked,
            version=published.version,
        )
        now = self._clock()
        # Entries whose card can no longer be used are forgotten, which bounds the copies.
        cards = {k: v for k, v in (previous.denied_cards if previous else {}).items() if v[1] > now}
        serials = {
            k: v for k, v in (previous.denied_serials if previous else {}).items() if v[1] > now
        }
        version = previous.deny_version if previous else 0
        for _ in range(DENY_LIST_PAGES_PER_REFRESH_MAX):
            delta = self._deny_source.deny_list_since(version, now=now)
            for entry in delta.entries:
                listed = _listing(entry["listed_at"], entry["until"])
                cards[entry["card_id"]] = listed
                if entry.get("serial"):
                    serials[entry["serial"]] = listed
            version = delta.version
            if not delta.more:
                break
        for denied in self._denials_pending:
            listed = _listing(denied.listed_at, denied.until)
            cards[denied.card_id] = listed
            if denied.serial:
                serials[denied.serial] = listed
        self._denials_pending.clear()
        return _Trust(keys, cards, serials, version, self._monotonic())


def _listing(listed_at: datetime, until: datetime) -> tuple[datetime, datetime]:
    """A deny entry as the verifier keeps it. Taps are stamped in whole seconds, so a tap
    stamped in the second its card was listed cannot be told to be before the listing: it is
    counted after, and the first tap after a block is refused rather than guessed earlier."""
    return listed_at.replace(microsecond=0), until


def start_thread(work: Callable[[], None]) -> None:
    """A `spawn` for `TapVerifier`: the work in a daemon thread of its own."""
    threading.Thread(target=work, name="trust-reload", daemon=True).start()
