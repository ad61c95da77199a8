"""Journeys: the fare follower of the tap path (DESIGN "The tap path", step 4).

It reads accepted `Tap.Recorded` events from the Taps log in order and builds each rider's
journeys: a metro entry holds the maximum fare from its station, the exit posts the real fare; a
bus boarding and its alighting on the same route are debited as one leg; a metro entry soon after
a bus leg joins its journey, so the feed's transfer discount applies. `close_service_day` charges
every journey still open the maximum fare; a late exit then refunds the difference.

Each journey is priced with the rider's passes (`RiderPasses`, bought through `PassSales`) and the
rider's spend in each cap period (kept in `RiderJourneys`, saved with the journey). A verified
card tap also records the purse its session left on the card's record: each section's newest
purse per card, in one save of the card store (`journey_purses`).

One pricer at a time: every step that prices taps (a section, a journey closed at day end) holds
the `PricingLock`, shared by every process on the store, and a section reads the tracked position
only once it holds it. Without it, two workers' followers would apply the same taps, each moving
money before one of their saves lost (see `ticketing.journeys.application.pricing_lock`).

Exactly once: taps are applied in sections (`_apply_section`). The position in the Taps log is a
tracking record saved in the same transaction as the journeys a section changed (this
application's own process recorder), so a tap is applied once. Money moves in another
application, before that save, as one all-or-none ledger batch; every transfer id is derived from
the journey, so a section re-applied after a crash repeats the same transfers, which the ledger
makes one effect. A `Follower` over SQL tables would not do: its tracking row lives beside view
tables, while this follower's effects are events.

Speed: riders' books, passes and journeys are remembered between sections (`LogCheckedCache`,
checked against this store's log for other writers), a medium's account is read once
(`Payers`), the metro hold's maximum fare is remembered where the engine's answer cannot
differ (`MaxFares`), and a section's card purses cost one save of the card store
(`PurseRecorder`) rather than a read and a save per card tap.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any, ClassVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, ProcessRecorder, Tracking

from ticketing.accounts.application.ledger import LEDGER_BATCH_MAX, Ledger
from ticketing.accounts.domain.errors import LedgerError
from ticketing.cards.application.card_issuer import CardIssuer
from ticketing.cards.application.card_purses import SectionPurses, card_payment
from ticketing.cards.application.smart_cards import SmartCards
from ticketing.fares.engine import FareEngine
from ticketing.fares.journey_fares import service_day
from ticketing.journeys.application.charges import Charger, DeferredCharger
from ticketing.journeys.application.max_fares import MaxFares
from ticketing.journeys.application.payers import Payers
from ticketing.journeys.application.pricing import RiderPricing, held_passes
from ticketing.journeys.application.pricing_lock import (
    PRICING_LOCK_WAIT_S,
    InProcessPricingLock,
    PricingLock,
    holding,
)
from ticketing.journeys.application.purses import PurseRecorder
from ticketing.journeys.application.section import Section
from ticketing.journeys.application.short_accounts import ShortAccounts
from ticketing.journeys.application.standalone_fares import StandaloneFares
from ticketing.journeys.application.tap_work import TapPlace
from ticketing.journeys.application.taps import apply_tap, close_journey
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_errors import ServiceDayNotEnded
from ticketing.journeys.domain.journey_status import JourneyStatus, PaidFrom
from ticketing.journeys.domain.rider_journeys import RiderJourneys
from ticketing.journeys.domain.rider_passes import RiderPasses
from ticketing.shared.domain.invariants import InvariantViolated, require
from ticketing.shared.following import FOLLOW_POLL_S, catch_up, follow, next_section
from ticketing.shared.log_checked_cache import LogCheckedCache
from ticketing.shared.observed import LOG_SECTION_MAX, ObservedApplication
from ticketing.taps.application.ingestion import TapIngestion
from ticketing.taps.domain.tap import Tap, Verdict
from ticketing.taps.domain.tap_facts import TapFacts
from ticketing.taps.domain.validator import Validator, ValidatorKind

# Taps read from the log per pull; they are applied in sections, each one transaction.
JOURNEY_SECTION_MAX = LOG_SECTION_MAX
# The most ledger commands one tap makes (a hold posted, the rest debited; a void; a refund),
# so a section's batch stays within LEDGER_BATCH_MAX.
TAP_COMMANDS_MAX = 4
# Changes of a rider's book between its snapshots: a read replays at most this many events.
RIDER_BOOK_SNAPSHOT_INTERVAL = 50
# Journeys closed per `close_service_day` call; the caller repeats until none is left.
DAY_CLOSE_BATCH_MAX = 10_000

log = logging.getLogger(__name__)

OpenJourneys = Callable[[date, int], Sequence[UUID]]


class Journeys(ObservedApplication):
    """Builds, prices and charges journeys from taps; closes a service day."""

    name = "Journeys"
    # A rider's book changes with almost every tap: without snapshots, reading it back (after a
    # section was thrown away, or in a process that never held it) replays every change.
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        RiderJourneys: RIDER_BOOK_SNAPSHOT_INTERVAL
    }

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
        pricing_lock: PricingLock | None = None,
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
        # One section or one close at a time, in this process and every other on the store.
        self.pricing_lock = pricing_lock or InProcessPricingLock()
        self.payers = Payers(cards, smart_cards, ledger)
        self._cache = LogCheckedCache(self)
        self._short = ShortAccounts()
        self.max_fares = MaxFares(fares)
        self.standalone_fares = StandaloneFares(fares)
        self.purses = PurseRecorder(smart_cards)

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
        """How far behind the follower is: 0 when no recorded tap waits (the Taps log also holds
        registrations and conflicts, which the follower skips, so a log ending with those is
        not a follower behind); otherwise the notifications from its position to the head, an
        upper bound on the taps waiting that costs no count."""
        start = self.position()
        waiting = next_section(self.taps, start, limit=1, topics=[Tap.Recorded.TOPIC])
        if waiting is None or not waiting.notifications:
            return 0
        head = self.taps.recorder.max_notification_id() or 0
        return head - start

    # The follower

    def pull(self) -> int:
        """Applies one section of new taps; returns how many taps were read, or 0 when another
        follower holds the pricing lock (it is applying them)."""
        with holding(self.pricing_lock) as held:
            if not held:
                return 0
            # Read under the lock: a position read before it may be one another follower has
            # since moved past, and its taps would be applied again on top of their effects.
            start = self.position()
            section = next_section(
                self.taps, start, limit=JOURNEY_SECTION_MAX, topics=[Tap.Recorded.TOPIC]
            )
            if section is None:
                return 0
            notifications = section.notifications
            taps = [(n.id, _recorded(self.taps.mapper.to_domain_event(n))) for n in notifications]
            while taps:
                applied = self._apply_section(taps, self._short)
                taps = taps[applied:]
            return len(notifications)

    def catch_up(self) -> int:
        return catch_up(self.pull)

    def run(self, stop: threading.Event, *, poll_s: float = FOLLOW_POLL_S) -> None:
        follow(self.pull, stop=stop, wake=self.wake, poll_s=poll_s, name="the journey follower")

    # Use cases

    def last_ended_day(self) -> date:
        """The service day that ended most recently (04:00 to 04:00, Asia/Ho_Chi_Minh)."""
        return service_day(self.ledger.now(), self.fares.timezone) - timedelta(days=1)

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
            with holding(self.pricing_lock, wait_s=PRICING_LOCK_WAIT_S) as held:
                if not held:
                    log.warning("journey %s left for the next close: pricing is busy", journey_id)
                    continue
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

    def _apply_section(self, taps: Sequence[tuple[int, TapFacts]], short: ShortAccounts) -> int:
        """Applies the longest run of `taps` the ledger accepts as one batch, and saves it with
        the tracking record of its last tap; returns how many taps it applied (at least one).

        The ledger commands are collected while the taps are applied in memory, then run all
        or none before the save. When the ledger refuses one, nothing of the section is kept,
        nor the purses its card taps showed: the taps before the refused one are applied again
        as a shorter section, and the refused tap alone, charging as it goes, so its journey
        records the refusal. The purses are recorded between the ledger's commit and the save.
        A crash after the ledger's commit re-applies the section from the tracked position: the
        same journeys give the same transfer ids, which the ledger answers as repeats, and the
        same sessions' counters, which the cards' records answer by recording nothing.

        An account the ledger refused (`short`, remembered across sections and pulls: most
        often one without the funds for a hold) is likely refused again: its taps end a section
        and are applied alone until one passes with nothing refused (`ShortAccounts`), so a
        rider short of money costs one tap's work per tap rather than sections applied again.
        """
        if self._paying_account(taps[0][1]) in short:
            return self._apply_alone(*taps[0])
        limit = len(taps)
        while True:
            self._cache.refresh()
            section = Section(self._load, self._cache)
            charger = DeferredCharger(self.ledger)
            purses = SectionPurses()
            ends: list[int] = []  # after each tap applied, how many commands it had made
            for _, tap in taps[:limit]:
                if len(charger.commands) > LEDGER_BATCH_MAX - TAP_COMMANDS_MAX:
                    break
                # On a retry the taps before the refused one are known to be accepted.
                if ends and limit == len(taps) and self._paying_account(tap) in short:
                    break
                self._apply(tap, section, charger, purses)
                ends.append(len(charger.commands))
            self._check_still_pricing(section)
            outcome = self.ledger.execute_all(charger.commands)
            if outcome.committed:
                self._record_purses(purses, section)
                self._save_tracked(taps[len(ends) - 1][0], section)
                return len(ends)
            section.discard()
            refused_at = outcome.refused_at
            refused_tap = 0 if refused_at is None else bisect_right(ends, refused_at)
            refused_account = self._paying_account(taps[refused_tap][1])
            if refused_account is not None:
                short.add(refused_account)
            if refused_tap == 0:
                return self._apply_alone(*taps[0])
            limit = refused_tap

    def _apply_alone(self, notification_id: int, tap: TapFacts) -> int:
        """Applies one tap running each ledger command as it comes (the riders' aggregates come
        from the cache, checked against the log first, as a section's do)."""
        self._cache.refresh()
        section = Section(self._load, self._cache)
        self._check_still_pricing(section)
        purses = SectionPurses()
        refusals, passed = self.charger.refusals, self.charger.passed
        self._apply(tap, section, self.charger, purses)
        self._record_purses(purses, section)
        self._save_tracked(notification_id, section)
        account_id = self._paying_account(tap)
        paid = self.charger.refusals == refusals and self.charger.passed > passed
        if paid and account_id is not None:
            self._short.discard(account_id)  # paid with nothing refused: back to sections
        return 1

    def _check_still_pricing(self, section: Section) -> None:
        """Stops before any money moves when the lock was lost (a dropped database session):
        another follower may be applying these taps now."""
        if not self.pricing_lock.still_held():
            section.discard()
            raise PricingLockLost

    def close(self) -> None:
        super().close()
        self.pricing_lock.close()

    def _record_purses(self, purses: SectionPurses, section: Section) -> None:
        """Records the section's purses before its tracking save, so a failure here leaves the
        section to be applied again; its objects then hold changes the store does not."""
        try:
            self.purses.record(purses)
        except BaseException:
            section.discard()
            raise

    def _apply(
        self, tap: TapFacts, section: Section, charger: Charger, purses: SectionPurses
    ) -> None:
        if tap.verification != Verdict.ACCEPTED:
            return  # the backend could not verify the medium: nobody to charge
        # A verified session's purse is the card's own, whatever the gate decided.
        purses.see(tap)
        if tap.device_decision != Verdict.ACCEPTED:
            # The gate stayed shut: no ride began or ended here. The tap stays recorded with its
            # reason, and a disagreement with the backend is listed for staff (`TapViews`).
            return
        validator = self._validator(tap.validator_id)
        if validator is None or validator.kind is ValidatorKind.PARKING_HANDHELD:
            return
        try:
            account, paid_from = self.payers.payer(tap)
        except LedgerError as error:
            # A medium the backend verified always has an account; keep going, loudly.
            log.warning("tap %s/%s has no paying account: %s", tap.validator_id, tap.seq, error)
            return
        place = TapPlace.of(validator, self.fares, tap.stop_id)
        passes = held_passes(section.passes(account.id))
        pricing = RiderPricing(
            self.fares, passes, section.book(account.id), self.max_fares, self.standalone_fares
        )
        journeys = apply_tap(
            tap=tap,
            place=place,
            account=account,
            paid_from=paid_from,
            pricing=pricing,
            load=section.journey,
            charger=charger,
            payment=card_payment(tap) if paid_from is PaidFrom.CARD_PURSE else None,
            place_of=self._place_of,
        )
        section.keep(*journeys)

    def _paying_account(self, tap: TapFacts) -> UUID | None:
        """The account a tap would charge, if it would charge one (as `_apply` finds it)."""
        if tap.verification != Verdict.ACCEPTED or tap.device_decision != Verdict.ACCEPTED:
            return None
        try:
            account, _ = self.payers.payer(tap)
        except LedgerError:
            return None
        return account.id

    def _validator(self, validator_id: int) -> Validator | None:
        # `get_validator` remembers registrations: each is read once per process.
        try:
            return self.taps.get_validator(validator_id)
        except LedgerError:
            return None

    def _place_of(self, validator_id: int) -> TapPlace | None:
        """Where a validator stands, for the torn tap a re-tap recovers; None if unknown."""
        validator = self._validator(validator_id)
        if validator is None or validator.kind is ValidatorKind.PARKING_HANDHELD:
            return None
        return TapPlace.of(validator, self.fares)

    def _pricing(self, account_id: UUID) -> RiderPricing:
        section = Section(self._load)
        passes = held_passes(section.passes(account_id))
        return RiderPricing(
            self.fares, passes, section.book(account_id), self.max_fares, self.standalone_fares
        )

    def _load(self, aggregate_id: UUID) -> Aggregate | None:
        try:
            found: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found

    def _save_tracked(self, notification_id: int, section: Section) -> None:
        processing = ProcessingEvent[UUID](tracking=Tracking(self.taps.name, notification_id))
        processing.collect_events(*section.changed())
        try:
            recordings = self._record(processing)
        except BaseException:
            # Another follower saved first, or the process is going down: the objects hold
            # changes the store does not.
            section.discard()
            raise
        self._cache.saved(recordings)
        # `save` would take them; the follower records its sections itself.
        self._take_snapshots(processing)
        self._notify(recordings)


def _recorded(event: object) -> TapFacts:
    """A tap the follower read from the Taps log, which it reads for recorded taps only."""
    if not isinstance(event, Tap.Recorded):
        raise InvariantViolated(f"the journey follower read a {type(event).__name__}")
    return event


class PricingLockLost(Exception):
    """The pricing lock was lost mid-section; the section is applied again once it is had."""
