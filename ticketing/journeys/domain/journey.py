"""A journey: the legs one rider travels between taps, priced by the fare engine and charged once.

Its id is the `uuid5` of its first tap, so the follower reprocessing that tap finds the same
journey instead of starting a second one. A leg is a metro entry and exit, or a bus boarding and
alighting; a leg may begin from its exit when the exit tap reaches the backend first. The events
keep legs in their stored form (`Leg.stored`, times as ISO strings), as every release has written
them; the journey holds `Leg` objects, read from its events (and its snapshots) as they apply.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ticketing.journeys.domain.journey_errors import JourneyNotExtendable, JourneyNotOpen
from ticketing.journeys.domain.journey_ids import (
    CARD_PROOF_PREFIX,
    card_proof_id,
    journey_id,
    purse_transfer_id,
)
from ticketing.journeys.domain.journey_snapshot import JourneySnapshot
from ticketing.journeys.domain.journey_status import MOVES_FROM, JourneyStatus, PaidFrom
from ticketing.journeys.domain.leg import Leg
from ticketing.shared.domain.invariants import require

TOPIC_PREFIX = "ticketing.Journey"
# A journey joins at most this many legs (the fare engine's own bound).
JOURNEY_LEGS_MAX = 16
REASON_MAX_CHARS = 300


class Journey(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Started(Created):
        TOPIC = f"{TOPIC_PREFIX}.Started"
        account_id: UUID
        paid_from: str
        rider_category: str
        fare_media: str
        service_day: str
        leg: dict[str, Any]
        at: datetime

    class LegStarted(Event):
        TOPIC = f"{TOPIC_PREFIX}.LegStarted"
        leg: dict[str, Any]
        at: datetime

    class Ended(Event):
        TOPIC = f"{TOPIC_PREFIX}.Ended"
        leg_index: int
        leg: dict[str, Any]
        at: datetime

    class LegsRepaired(Event):
        TOPIC = f"{TOPIC_PREFIX}.LegsRepaired"
        first_index: int
        legs: list[dict[str, Any]]
        at: datetime

    class LegsJoined(Event):
        TOPIC = f"{TOPIC_PREFIX}.LegsJoined"
        from_journey_id: UUID
        legs: list[dict[str, Any]]
        purse_paid_vnd: int
        purse_refunded_vnd: int
        at: datetime
        # The card sessions the moved legs' purse payments were proved by (`card_proof_id`), so
        # a re-tap proving one again finds it here. Events stored before proofs carry none.
        card_proofs: list[str] | None = None

    class MergedInto(Event):
        TOPIC = f"{TOPIC_PREFIX}.MergedInto"
        journey_id: UUID
        at: datetime

    class Priced(Event):
        TOPIC = f"{TOPIC_PREFIX}.Priced"
        fare_vnd: int
        reference_vnd: int | None
        transfer_discount_vnd: int
        at: datetime
        # Why the fare is lower than the legs' products: passes that covered legs, the cap that
        # bit. Events stored before passes and caps counted carry neither.
        pass_product_ids: list[str] | None = None
        cap_id: str | None = None
        # Version 2 added each leg's network, route and standalone fare in travel order
        # (`StandaloneFares.leg_fares`) and the feed version that priced them: none before.
        leg_fares: list[dict[str, Any]] | None = None
        feed_version: str | None = None
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["leg_fares"] = None
            state["feed_version"] = None

    class Charged(Event):
        TOPIC = f"{TOPIC_PREFIX}.Charged"
        transfer_id: str
        kind: str  # hold | post | void | debit | refund
        amount_vnd: int
        at: datetime

    class PursePaid(Event):
        TOPIC = f"{TOPIC_PREFIX}.PursePaid"
        tap_id: str
        amount_vnd: int
        at: datetime
        # What identifies the card session that paid (`card_proof_id`): the torn tap and the
        # re-tap that recovers it prove the same one. Events stored before proofs carry none.
        proof: str | None = None

    class PurseRefunded(Event):
        TOPIC = f"{TOPIC_PREFIX}.PurseRefunded"
        transfer_id: str
        amount_vnd: int
        at: datetime

    class Refused(Event):
        TOPIC = f"{TOPIC_PREFIX}.Refused"
        code: str
        reason: str
        at: datetime

    class ChargeFailed(Event):
        TOPIC = f"{TOPIC_PREFIX}.ChargeFailed"
        code: str
        reason: str
        at: datetime

    class ClosedAtDayEnd(Event):
        TOPIC = f"{TOPIC_PREFIX}.ClosedAtDayEnd"
        fare_vnd: int
        at: datetime

    class Corrected(Event):
        TOPIC = f"{TOPIC_PREFIX}.Corrected"
        fare_vnd: int
        refund_vnd: int
        at: datetime

    # The aggregate's state with its legs stored as the events store them.
    Snapshot = JourneySnapshot

    # What the card's purse paid at the validators for a purse-paid journey, and what of it went
    # back to the account because the journey cost less. Journeys stored before purses were
    # counted, and their snapshots, carry neither, so both default here.
    purse_paid_vnd = 0
    purse_refunded_vnd = 0
    # How many times taps uploaded late had the legs paired again (names each repair's charge).
    repairs = 0
    # The legs' standalone fares the last pricing recorded; None once the legs changed since.
    leg_fares: list[dict[str, Any]] | None = None

    @staticmethod
    def create_id(first_tap_id: UUID) -> UUID:
        return journey_id(first_tap_id)

    @event(Started)
    def __init__(
        self,
        account_id: UUID,
        paid_from: str,
        rider_category: str,
        fare_media: str,
        service_day: str,
        leg: dict[str, Any],
        at: datetime,
    ) -> None:
        first = Leg.from_stored(leg)
        self.account_id = account_id
        self.paid_from_code = paid_from
        self.rider_category = rider_category
        self.fare_media = fare_media
        self.service_day = service_day
        self.legs: list[Leg] = [first]
        self.status_code = (
            JourneyStatus.EXIT_PENDING.value
            if first.entry_tap is None
            else JourneyStatus.OPEN.value
        )
        self.fare_vnd: int | None = None
        self.reference_vnd: int | None = None
        self.transfer_discount_vnd = 0
        # Passes that covered legs, and the cap that limited the fare, at the last pricing.
        self.pass_product_ids: list[str] = []
        self.cap_id: str | None = None
        self.hold_id: str | None = None  # the pending metro hold, if one is open
        self.held_vnd = 0
        self.charged_vnd = 0  # what the account paid, net of refunds
        self.transfers: list[str] = []
        self.reason_code: str | None = None
        self.reason: str | None = None

    @classmethod
    def start(
        cls,
        *,
        first_tap_id: UUID,
        account_id: UUID,
        paid_from: PaidFrom,
        rider_category: str,
        fare_media: str,
        service_day: str,
        leg: Leg,
        at: datetime,
    ) -> Journey:
        return cls._create(
            cls.Started,
            id=journey_id(first_tap_id),
            account_id=account_id,
            paid_from=paid_from.value,
            rider_category=rider_category,
            fare_media=fare_media,
            service_day=service_day,
            leg=leg.stored(),
            at=at,
        )

    # Queries

    @property
    def status(self) -> JourneyStatus:
        return JourneyStatus(self.status_code)

    @property
    def paid_from(self) -> PaidFrom:
        return PaidFrom(self.paid_from_code)

    @property
    def last_leg(self) -> Leg:
        return self.legs[-1]

    @property
    def complete(self) -> bool:
        return all(leg.complete for leg in self.legs)

    def has_tap(self, tap: str) -> bool:
        return any(leg.has_tap(tap) for leg in self.legs)

    def proves(self, proof: str) -> bool:
        """Whether a purse payment of this journey, or of a journey merged into it, was proved
        by the card session `proof` names."""
        return card_proof_id(proof) in self.transfers

    # Commands

    def add_leg(self, *, leg: Leg, at: datetime) -> None:
        if not self.complete or self.status is not JourneyStatus.ENDED:
            raise JourneyNotExtendable(self.id)
        if len(self.legs) >= JOURNEY_LEGS_MAX:
            raise JourneyNotExtendable(self.id)
        self._leg_started(leg=leg.stored(), at=at)

    @event(LegStarted)
    def _leg_started(self, leg: dict[str, Any], at: datetime) -> None:
        self.legs.append(Leg.from_stored(leg))
        self.status_code = JourneyStatus.OPEN.value
        self.leg_fares = None

    def end_leg(self, *, leg: Leg, at: datetime) -> None:
        """Completes the last leg: its exit after an entry, or its entry after an early exit."""
        require(leg.complete, "an ended leg has both taps")
        self._ended(leg_index=len(self.legs) - 1, leg=leg.stored(), at=at)

    @event(Ended)
    def _ended(self, leg_index: int, leg: dict[str, Any], at: datetime) -> None:
        self.legs[leg_index] = Leg.from_stored(leg)
        self.leg_fares = None

    def repair_legs(self, *, first_index: int, legs: list[Leg], at: datetime) -> None:
        """Replaces the legs from `first_index` on with `legs`, the same taps paired again in the
        order they happened: a tap uploaded late belonged between taps already paired. Only the
        last of them may be open."""
        require(0 <= first_index < len(self.legs), "the repaired legs are the journey's")
        require(bool(legs), "a repair leaves at least one leg")
        require(first_index + len(legs) <= JOURNEY_LEGS_MAX, "a journey has bounded legs")
        require(all(leg.complete for leg in legs[:-1]), "only the last leg may be open")
        if self.status not in (JourneyStatus.OPEN, JourneyStatus.ENDED):
            raise JourneyNotOpen(self.id, self.status)
        stored = [leg.stored() for leg in legs]
        self._legs_repaired(first_index=first_index, legs=stored, at=at)

    @event(LegsRepaired)
    def _legs_repaired(self, first_index: int, legs: list[dict[str, Any]], at: datetime) -> None:
        self.legs[first_index:] = [Leg.from_stored(leg) for leg in legs]
        self.repairs += 1
        self.leg_fares = None
        if not self.complete:
            self.status_code = JourneyStatus.OPEN.value

    def join_legs(self, later: Journey, *, at: datetime) -> None:
        """Takes the legs of `later`, a journey that began within a transfer of this one's end
        but reached the backend as one of its own; `later` is then `merge_into` this one."""
        require(later.id != self.id, "a journey joins another")
        require(self.status is JourneyStatus.ENDED, "only an ended journey takes a transfer")
        require(later.status in MOVES_FROM and later.hold_id is None, "nothing held moves")
        require(len(self.legs) + len(later.legs) <= JOURNEY_LEGS_MAX, "bounded legs")
        self._legs_joined(
            from_journey_id=later.id,
            legs=[leg.stored() for leg in later.legs],
            purse_paid_vnd=later.purse_paid_vnd,
            purse_refunded_vnd=later.purse_refunded_vnd,
            at=at,
            card_proofs=[t for t in later.transfers if t.startswith(CARD_PROOF_PREFIX)],
        )

    @event(LegsJoined)
    def _legs_joined(
        self,
        from_journey_id: UUID,
        legs: list[dict[str, Any]],
        purse_paid_vnd: int,
        purse_refunded_vnd: int,
        at: datetime,
        card_proofs: list[str] | None = None,
    ) -> None:
        self.legs.extend(Leg.from_stored(leg) for leg in legs)
        self.leg_fares = None
        self.purse_paid_vnd += purse_paid_vnd
        self.purse_refunded_vnd += purse_refunded_vnd
        self.transfers.extend(card_proofs or [])
        if not self.complete:
            self.status_code = JourneyStatus.OPEN.value

    def merge_into(self, journey_id: UUID, *, at: datetime) -> None:
        """This journey's legs now belong to `journey_id`, which charges them."""
        require(self.charged_vnd == 0, "what the account paid went back first")
        self._merged_into(journey_id=journey_id, at=at)

    @event(MergedInto)
    def _merged_into(self, journey_id: UUID, at: datetime) -> None:
        self.status_code = JourneyStatus.MERGED.value
        self.fare_vnd = 0

    def price(
        self,
        *,
        fare_vnd: int,
        reference_vnd: int | None,
        transfer_discount_vnd: int,
        at: datetime,
        pass_product_ids: list[str] | None = None,
        cap_id: str | None = None,
        leg_fares: list[dict[str, Any]] | None = None,
        feed_version: str | None = None,
    ) -> None:
        require(fare_vnd >= 0, "a fare is never negative")
        require(leg_fares is None or len(leg_fares) == len(self.legs), "a fare for each leg")
        self._priced(
            fare_vnd=fare_vnd,
            reference_vnd=reference_vnd,
            transfer_discount_vnd=transfer_discount_vnd,
            at=at,
            pass_product_ids=list(pass_product_ids or []),
            cap_id=cap_id,
            leg_fares=leg_fares,
            feed_version=feed_version,
        )

    @event(Priced)
    def _priced(
        self,
        fare_vnd: int,
        reference_vnd: int | None,
        transfer_discount_vnd: int,
        at: datetime,
        pass_product_ids: list[str] | None = None,
        cap_id: str | None = None,
        leg_fares: list[dict[str, Any]] | None = None,
        feed_version: str | None = None,
    ) -> None:
        self.fare_vnd = fare_vnd
        self.reference_vnd = reference_vnd
        self.transfer_discount_vnd = transfer_discount_vnd
        self.pass_product_ids = list(pass_product_ids or [])
        self.cap_id = cap_id
        self.leg_fares = leg_fares
        if self.complete:
            self.status_code = JourneyStatus.ENDED.value

    def charge(self, *, transfer_id: str, kind: str, amount_vnd: int, at: datetime) -> None:
        require(self.paid_from is PaidFrom.ACCOUNT, "only an account-paid journey is charged")
        require(transfer_id not in self.transfers, "each transfer is charged once")
        require(amount_vnd >= 0, "a charge is never negative")
        self._charged(transfer_id=transfer_id, kind=kind, amount_vnd=amount_vnd, at=at)

    @event(Charged)
    def _charged(self, transfer_id: str, kind: str, amount_vnd: int, at: datetime) -> None:
        self.transfers.append(transfer_id)
        if kind == "hold":
            self.hold_id = transfer_id
            self.held_vnd = amount_vnd
        elif kind == "post":
            self.hold_id = None
            self.held_vnd = 0
            self.charged_vnd += amount_vnd
        elif kind == "void":
            self.hold_id = None
            self.held_vnd = 0
        elif kind == "refund":
            self.charged_vnd -= amount_vnd
        else:
            self.charged_vnd += amount_vnd

    def pay_from_purse(
        self, *, tap_id: str, amount_vnd: int, at: datetime, proof: str | None = None
    ) -> None:
        """The card's purse paid `amount_vnd` for this journey at tap `tap_id`, in the card
        session `proof` names; once per tap and once per session. A session proved by a tap of
        its own and by a re-tap after a tear (spec/CARD.md, "Ratification") is one payment.
        With a proof the amount may be 0: a metro exit its entry paid is still that session."""
        require(self.paid_from is PaidFrom.CARD_PURSE, "only a purse-paid journey")
        require(amount_vnd >= 0, "a purse payment is never negative")
        require(amount_vnd > 0 or proof is not None, "a purse payment takes money or proves one")
        if purse_transfer_id(tap_id) in self.transfers:
            return  # the same tap applied again
        if proof is not None and self.proves(proof):
            return  # the same session, proved again by another tap
        self._purse_paid(tap_id=tap_id, amount_vnd=amount_vnd, at=at, proof=proof)

    @event(PursePaid)
    def _purse_paid(
        self, tap_id: str, amount_vnd: int, at: datetime, proof: str | None = None
    ) -> None:
        self.transfers.append(purse_transfer_id(tap_id))
        if proof is not None:
            self.transfers.append(card_proof_id(proof))
        self.purse_paid_vnd += amount_vnd

    @property
    def purse_overpaid_vnd(self) -> int:
        """What the purse paid beyond the journey's fare and has not been given back."""
        if self.fare_vnd is None:
            return 0
        return max(0, self.purse_paid_vnd - self.purse_refunded_vnd - self.fare_vnd)

    def refund_purse(self, *, transfer_id: str, amount_vnd: int, at: datetime) -> None:
        """`amount_vnd` the purse overpaid went back to the account by ledger `transfer_id`."""
        require(self.paid_from is PaidFrom.CARD_PURSE, "only a purse-paid journey")
        require(0 < amount_vnd <= self.purse_overpaid_vnd, "a refund of what was overpaid")
        require(transfer_id not in self.transfers, "each transfer is recorded once")
        self._purse_refunded(transfer_id=transfer_id, amount_vnd=amount_vnd, at=at)

    @event(PurseRefunded)
    def _purse_refunded(self, transfer_id: str, amount_vnd: int, at: datetime) -> None:
        self.transfers.append(transfer_id)
        self.purse_refunded_vnd += amount_vnd

    def refuse(self, *, code: str, reason: str, at: datetime) -> None:
        self._refused(code=code, reason=reason[:REASON_MAX_CHARS], at=at)

    @event(Refused)
    def _refused(self, code: str, reason: str, at: datetime) -> None:
        self.status_code = JourneyStatus.REFUSED.value
        self.reason_code = code
        self.reason = reason

    def fail_charge(self, *, code: str, reason: str, at: datetime) -> None:
        self._charge_failed(code=code, reason=reason[:REASON_MAX_CHARS], at=at)

    @event(ChargeFailed)
    def _charge_failed(self, code: str, reason: str, at: datetime) -> None:
        self.status_code = JourneyStatus.UNPAID.value
        self.reason_code = code
        self.reason = reason

    def close_at_day_end(self, *, fare_vnd: int, at: datetime) -> None:
        if self.status not in (JourneyStatus.OPEN, JourneyStatus.EXIT_PENDING):
            raise JourneyNotOpen(self.id, self.status)
        self._closed(fare_vnd=fare_vnd, at=at)

    @event(ClosedAtDayEnd)
    def _closed(self, fare_vnd: int, at: datetime) -> None:
        self.fare_vnd = fare_vnd
        self.status_code = JourneyStatus.CLOSED.value

    def correct(self, *, fare_vnd: int, at: datetime) -> None:
        """A late tap completed a journey closed at day end: the real fare replaces the maximum."""
        if self.status is not JourneyStatus.CLOSED or self.fare_vnd is None:
            raise JourneyNotOpen(self.id, self.status)
        refund_vnd = max(0, self.fare_vnd - fare_vnd)
        self._corrected(fare_vnd=fare_vnd, refund_vnd=refund_vnd, at=at)

    @event(Corrected)
    def _corrected(self, fare_vnd: int, refund_vnd: int, at: datetime) -> None:
        self.fare_vnd = fare_vnd
        self.status_code = JourneyStatus.ENDED.value
