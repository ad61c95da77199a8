"""A TLC1 card tapped at a bus validator or a metro gate: decide offline, pay from the purse.

The normal flow is CARD.md's: SELECT, OPEN at the debit level reading the environment, READ the
last event, decide, DECREASE the fare, APPEND the event, CLOSE, READ to ratify: at most 8 APDUs.
At a metro exit the purse pays nothing when the card's last event is an entry of this network
within `METRO_RIDE_MAX_S`: the entry gate charged the dearest ride from there, and the backend
returns what the ride cost less to the rider's account once it knows both ends. A card showing no
such entry is charged the dearest ride ending here, as nothing else paid for it.

A card torn away between CLOSE and the ratifying READ paid but never saw the green light; when it
comes back unratified with a very recent event of this network at this same point, it is let
through again free, and that session is closed (not aborted) so the card proves the earlier ride:
if the first validator never got the CLOSE answer, this proof is the only record of the fare.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Container
from dataclasses import dataclass
from enum import StrEnum

from hardware.reader import CardIOError
from hardware.tlc1.commands import CardCommandError, ConditionsNotSatisfied
from hardware.tlc1.constants import KeyLevel, Sfi
from hardware.tlc1.records import Environment, Event, EventKind, Purse, RecordError, is_blank
from hardware.tlc1.terminal import SessionProof, Terminal

# A re-tap after a tear comes within seconds; after this long a new ride is charged.
RETAP_WINDOW_S = 120
# The same card at the same point this soon after a paid tap is a passback, not a new ride.
PASSBACK_WINDOW_S = 60
# An entry this long before an exit paid for the ride ending there; an older one did not (the
# backend closes an entry with no exit at the end of its service day, at the maximum fare).
METRO_RIDE_MAX_S = 4 * 3600
CONTRACT_PURSE = 0


class Outcome(StrEnum):
    CHARGED = "charged"
    PAID_AT_ENTRY = "paid_at_entry"  # a metro exit: the entry on the card paid the ride
    RETAP_AFTER_TEAR = "retap_after_tear"  # already paid: the event on the card proves it
    CARD_DENIED = "card_denied"
    NOT_PERSONALISED = "card_not_personalised"
    OTHER_NETWORK = "card_of_another_network"
    PASSBACK = "passback"
    INSUFFICIENT_PURSE = "insufficient_purse"
    # The card left before this validator learnt the result. It may or may not have committed;
    # the rider taps again, and the next validator finds out from the card itself.
    CARD_LOST = "card_removed_too_early"
    # The validator's synced config prices no card ride here (not yet synced, or no fare rule).
    NO_FARE_HERE = "no_fare_here"


@dataclass(frozen=True)
class TapPoint:
    """Where the validator stands and what a ride costs there."""

    network_id: int
    location: int
    validator: int
    kind: EventKind
    fare_vnd: int


@dataclass(frozen=True)
class Validation:
    outcome: Outcome
    serial: bytes | None = None
    charged_vnd: int = 0
    purse_after_vnd: int | None = None
    proof: SessionProof | None = None  # travels upstream with the tap record
    recovered: Event | None = None  # on a re-tap after a tear: the ride the card already paid

    @property
    def accepted(self) -> bool:
        return self.outcome in (Outcome.CHARGED, Outcome.PAID_AT_ENTRY, Outcome.RETAP_AFTER_TEAR)


class CardValidator:
    def __init__(
        self,
        terminal: Terminal,
        point: TapPoint,
        *,
        denied_serials: Container[str],
        clock: Callable[[], int],
    ) -> None:
        self.terminal = terminal
        self.point = point
        self.denied_serials = denied_serials
        self.clock = clock

    def validate(self) -> Validation:
        """One tap: never raises for a card leaving the field or refusing; says why instead."""
        serial: bytes | None = None
        try:
            serial = self.terminal.select()
            if serial.hex() in self.denied_serials:
                return Validation(Outcome.CARD_DENIED, serial)
            return self._pay(serial)
        except CardIOError:
            return Validation(Outcome.CARD_LOST, serial)

    def _pay(self, serial: bytes) -> Validation:
        now = self.clock()
        session = self.terminal.open_session(KeyLevel.DEBIT, read=(Sfi.ENVIRONMENT, 1))
        environment_raw = session.record or b""
        if is_blank(environment_raw):
            session.abort()
            return Validation(Outcome.NOT_PERSONALISED, serial)
        try:
            environment = Environment.decode(environment_raw)
            last_raw = session.read_record(Sfi.EVENT_LOG, 1)
            last = None if is_blank(last_raw) else Event.decode(last_raw)
        except RecordError:
            session.abort()
            return Validation(Outcome.NOT_PERSONALISED, serial)
        if environment.network_id != self.point.network_id:
            session.abort()
            return Validation(Outcome.OTHER_NETWORK, serial)
        refusal = self._refusal_from_history(last, ratified=session.ratified, now=now)
        if refusal is Outcome.RETAP_AFTER_TEAR:
            # Close with no change: the card's MAC then proves the event and the purse read here.
            purse = Purse.decode(session.read_record(Sfi.PURSE, 1)).value_vnd
            proof = session.close()
            self._ratify()
            return Validation(refusal, serial, 0, purse, proof, recovered=last)
        if refusal is not None:
            session.abort()
            return Validation(refusal, serial)
        if self._entry_paid(last, now):
            purse = Purse.decode(session.read_record(Sfi.PURSE, 1)).value_vnd
            session.append_record(Sfi.EVENT_LOG, self._event(now, amount_vnd=0).encode())
            proof = session.close()
            self._ratify()
            return Validation(Outcome.PAID_AT_ENTRY, serial, 0, purse, proof)
        fare_vnd = self.point.fare_vnd
        try:
            purse_after = session.decrease(fare_vnd)
        except ConditionsNotSatisfied:
            # The terminal has already aborted the session: nothing was written.
            return Validation(Outcome.INSUFFICIENT_PURSE, serial)
        session.append_record(Sfi.EVENT_LOG, self._event(now, amount_vnd=fare_vnd).encode())
        proof = session.close()
        self._ratify()
        return Validation(Outcome.CHARGED, serial, fare_vnd, purse_after, proof)

    def _entry_paid(self, last: Event | None, now: int) -> bool:
        """Whether this is a metro exit whose ride the card's last event, an entry, paid."""
        return (
            self.point.kind is EventKind.METRO_EXIT
            and last is not None
            and last.kind is EventKind.METRO_ENTRY
            and last.network_id == self.point.network_id
            and 0 <= now - last.at <= METRO_RIDE_MAX_S
        )

    def _refusal_from_history(
        self, last: Event | None, *, ratified: bool, now: int
    ) -> Outcome | None:
        if last is None or last.network_id != self.point.network_id:
            return None
        age_s = now - last.at
        same_point = (last.location, last.kind) == (self.point.location, self.point.kind)
        # Only a re-tap where the torn ride happened: an unratified flag left by a torn reload
        # at the desk must not turn any tap soon after a ride into a free one.
        if not ratified and same_point and 0 <= age_s <= RETAP_WINDOW_S:
            return Outcome.RETAP_AFTER_TEAR
        if ratified and same_point and 0 <= age_s <= PASSBACK_WINDOW_S:
            return Outcome.PASSBACK
        return None

    def _event(self, now: int, *, amount_vnd: int) -> Event:
        return Event(
            at=now,
            kind=self.point.kind,
            network_id=self.point.network_id,
            location=self.point.location,
            validator=self.point.validator,
            contract=CONTRACT_PURSE,
            amount=amount_vnd,
        )

    def _ratify(self) -> None:
        # The card has committed; if it leaves before this READ, the next tap recovers it.
        with contextlib.suppress(CardIOError, CardCommandError):
            self.terminal.ratify()
