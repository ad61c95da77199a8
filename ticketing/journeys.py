"""Journeys: the fare follower of the tap path (DESIGN "The tap path", step 4).

It reads accepted `Tap.Recorded` events from the Taps log in order and builds each rider's
journeys: a metro entry holds the maximum fare from its station, the exit posts the real fare; a
bus boarding and its alighting on the same route are debited as one leg; a metro entry soon after
a bus leg joins its journey, so the feed's transfer discount applies. `close_service_day` charges
every journey still open the maximum fare; a late exit then refunds the difference.

Each journey is priced with the rider's passes (`RiderPasses`, bought through `PassSales`) and the
rider's spend in each cap period (kept in `RiderJourneys`, saved with the journey). A verified
card tap also records the purse its session left on the card's record (`card_purses`).

Exactly once: the position in the Taps log is a tracking record saved in the same transaction as
the journeys a tap changed (this application's own process recorder), so a tap is applied once.
Money moves in another application, before that save; every transfer id is derived from the
journey, so a tap re-applied after a crash repeats the same transfers, which the ledger makes one
effect. A `Follower` over SQL tables would not do: its tracking row lives beside view tables,
while this follower's effects are events.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, ProcessRecorder, Tracking

from ticketing.application import Ledger
from ticketing.card_issuer import CardIssuer
from ticketing.card_purses import record_purse
from ticketing.domain.errors import LedgerError
from ticketing.domain.invariants import require
from ticketing.domain.journey import Journey, JourneyStatus, PaidFrom, ServiceDayNotEnded
from ticketing.domain.rider_journeys import RiderJourneys
from ticketing.domain.rider_passes import RiderPasses
from ticketing.domain.tap import Tap
from ticketing.domain.validator import Validator, ValidatorKind
from ticketing.fares.engine import FareEngine
from ticketing.ingestion import TapIngestion
from ticketing.journey_charges import Charger
from ticketing.journey_fares import service_day
from ticketing.journey_pricing import RiderPricing, held_passes
from ticketing.journey_taps import TapPlace, apply_tap, close_journey
from ticketing.observed import LOG_SECTION_MAX, ObservedApplication
from ticketing.smart_cards import SmartCards

# Taps read from the log per pull, each applied in its own transaction.
JOURNEY_SECTION_MAX = LOG_SECTION_MAX
FOLLOW_POLL_S = 0.25
# Journeys closed per `close_service_day` call; the caller repeats until none is left.
DAY_CLOSE_BATCH_MAX = 10_000
# Card taps the validator charged on the card's purse (validators.card_validation.Outcome).
PURSE_PAID_DEVICE_REASONS = frozenset({"charged", "retap_after_tear"})

log = logging.getLogger(__name__)

OpenJourneys = Callable[[date, int], Sequence[UUID]]


class Journeys(ObservedApplication):
    """Builds, prices and charges journeys from taps; closes a service day."""

    name = "Journeys"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        taps: TapIngestion,
        ledger: Ledger,
        cards: CardIssuer,
        smart_cards: SmartCards,
        fares: FareEngine,
        open_journeys: OpenJourneys,
    ) -> None:
        super().__init__(env)
        self.taps = taps
        self.ledger = ledger
        self.cards = cards
        self.smart_cards = smart_cards
        self.fares = fares
        self.open_journeys = open_journeys
        self.charger = Charger(ledger)
        self.wake = threading.Event()
        # One tap or one close at a time in this process; other processes meet the store's
        # optimistic check and the tracking record.
        self._lock = threading.Lock()
        self._validators: dict[int, Validator] = {}

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    # Queries

    def get_journey(self, journey_id: UUID) -> Journey | None:
        try:
            journey: object = self.repository.get(journey_id)
        except AggregateNotFoundError:
            return None
        return journey if isinstance(journey, Journey) else None

    def get_passes(self, account_id: UUID) -> RiderPasses | None:
        try:
            passes: object = self.repository.get(RiderPasses.create_id(account_id))
        except AggregateNotFoundError:
            return None
        return passes if isinstance(passes, RiderPasses) else None

    def position(self) -> int:
        require(isinstance(self.recorder, ProcessRecorder), "the recorder tracks its position")
        recorder = cast(ProcessRecorder, self.recorder)
        return recorder.max_tracking_id(self.taps.name) or 0

    def lag(self) -> int:
        head = self.taps.recorder.max_notification_id() or 0
        return max(0, head - self.position())

    # The follower

    def pull(self) -> int:
        """Applies one section of new taps; returns how many taps were read."""
        start = self.position()
        head = self.taps.recorder.max_notification_id() or 0
        if head <= start:
            return 0
        notifications = self.taps.notification_log.select(
            start=start + 1,
            limit=JOURNEY_SECTION_MAX,
            stop=head,
            topics=[Tap.Recorded.TOPIC],
        )
        for notification in notifications:
            tap = self.taps.mapper.to_domain_event(notification)
            with self._lock:
                changed = self._apply(tap)
                self._save_tracked(notification.id, changed)
        return len(notifications)

    def catch_up(self) -> int:
        applied = 0
        while count := self.pull():
            applied += count
        return applied

    def run(self, stop: threading.Event, *, poll_s: float = FOLLOW_POLL_S) -> None:
        while not stop.is_set():
            try:
                applied = self.catch_up()
            except Exception:
                # Resumes from the tracked position: nothing is lost or applied twice.
                log.exception("the journey follower failed; retrying")
                applied = 0
            if not applied:
                self.wake.wait(poll_s)
                self.wake.clear()

    # Use cases

    def last_ended_day(self) -> date:
        """The service day that ended most recently (04:00 to 04:00, Asia/Ho_Chi_Minh)."""
        return service_day(self.ledger.now()) - timedelta(days=1)

    def close_ended_day(self, day: date | None = None) -> tuple[date, int]:
        """Closes a service day that has ended (by default the last one): every journey of it,
        or of an earlier day, still open is charged the maximum fare. Closing again closes only
        what arrived since. Returns the day and how many journeys were closed."""
        day = day or self.last_ended_day()
        if day > self.last_ended_day():
            raise ServiceDayNotEnded(day)
        closed = 0
        while batch := self.close_service_day(day):
            closed += batch
        return day, closed

    def close_service_day(self, day: date) -> int:
        """Charges every journey of `day` still open the maximum fare; returns how many."""
        closed = 0
        for journey_id in self.open_journeys(day, DAY_CLOSE_BATCH_MAX):
            with self._lock:
                journey = self.get_journey(journey_id)
                if journey is None or journey.status not in (
                    JourneyStatus.OPEN,
                    JourneyStatus.EXIT_PENDING,
                ):
                    continue
                pricing = self._pricing(journey.account_id)
                close_journey(journey, pricing, self.charger)
                try:
                    self.save(journey, pricing.book)
                except IntegrityError:
                    # A follower in another process changed this rider first. The ledger steps
                    # taken here are repeated by the next close under the same transfer ids.
                    log.warning(
                        "journey %s changed while closing; left for the next close", journey_id
                    )
                    continue
                closed += 1
        return closed

    # Internals

    def _apply(self, tap: Any) -> list[Aggregate]:
        if tap.verification != "accepted":
            return []
        record_purse(self.smart_cards, tap)
        validator = self._validator(tap.validator_id)
        if validator is None or validator.kind is ValidatorKind.PARKING_HANDHELD:
            return []
        try:
            account_id, paid_from = self._payer(tap)
            account = self.ledger.get_account(account_id)
        except LedgerError as error:
            # A medium the backend verified always has an account; keep going, loudly.
            log.warning("tap %s/%s has no paying account: %s", tap.validator_id, tap.seq, error)
            return []
        place = TapPlace.of(validator, self.fares)
        pricing = self._pricing(account_id)
        journeys = apply_tap(
            tap=tap,
            place=place,
            account=account,
            paid_from=paid_from,
            pricing=pricing,
            load=self.get_journey,
            charger=self.charger,
        )
        return [*journeys, pricing.book]

    def _payer(self, tap: Any) -> tuple[UUID, PaidFrom]:
        if tap.medium == "qr":
            return self.cards.get_virtual_card(tap.card_id).account_id, PaidFrom.ACCOUNT
        card = self.smart_cards.get(tap.serial)
        if tap.device_reason in PURSE_PAID_DEVICE_REASONS:
            return card.account_id, PaidFrom.CARD_PURSE
        return card.account_id, PaidFrom.ACCOUNT

    def _validator(self, validator_id: int) -> Validator | None:
        # A registration never changes, so it is read once per process.
        if validator_id not in self._validators:
            try:
                self._validators[validator_id] = self.taps.get_validator(validator_id)
            except LedgerError:
                return None
        return self._validators[validator_id]

    def _pricing(self, account_id: UUID) -> RiderPricing:
        passes = held_passes(self.get_passes(account_id))
        return RiderPricing(self.fares, passes, self._book(account_id))

    def _book(self, account_id: UUID) -> RiderJourneys:
        try:
            book: RiderJourneys = self.repository.get(RiderJourneys.create_id(account_id))
        except AggregateNotFoundError:
            return RiderJourneys(account_id=account_id)
        return book

    def _save_tracked(self, notification_id: int, aggregates: list[Aggregate]) -> None:
        processing = ProcessingEvent[UUID](tracking=Tracking(self.taps.name, notification_id))
        processing.collect_events(*aggregates)
        recordings = self._record(processing)
        self._notify(recordings)
