"""A TLC1 card tapped at a bus validator or a metro gate: decide offline, pay from the purse.

The normal flow is CARD.md's: SELECT, OPEN at the debit level reading the environment, READ the
last event, (READ the contracts), decide, DECREASE the fare unless a pass covers the ride, APPEND
the event, CLOSE, READ to ratify: at most 8 APDUs. Contracts are read only where the fare feed
has a pass that can cover a ride (`validators.card_passes`), slot by slot from the first, up to
the first empty slot: a card with no pass, or its pass in slot 1, stays within the 8.
At a metro exit the purse pays nothing when the card's last event is an entry of this network
within `METRO_RIDE_MAX_S`: the entry gate charged the dearest ride from there, and the backend
returns what the ride cost less to the rider's account once it knows both ends. A card showing no
such entry is charged the dearest ride ending here, as nothing else paid for it.

A card torn away between CLOSE and the ratifying READ paid but never saw the green light. CARD.md
says any validator of the network must then let it through free: it comes back unratified (SELECT
and OPEN do not ratify, and the flag outlives the field) with a very recent ride of this network,
wherever that ride was. That session is closed (not aborted) so the card proves the earlier ride:
if the first validator never got the CLOSE answer, this proof is the only record of the fare.

Every way a tap can fail ends in a `Validation` with its reason, never an exception, so the gate
records the refusal and stays in service: a card that refuses a command, a card whose MAC fails
either way (a cloned card, `card_not_genuine`, which the backend is told), a SAM lacking the
debit key, a reader that fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from enum import StrEnum

from hardware.reader import CardIOError, ReaderError, ReaderIOError
from hardware.sam import SamError
from hardware.tlc1.commands import CardCommandError, ConditionsNotSatisfied, IncorrectMac
from hardware.tlc1.constants import KeyLevel, Sfi
from hardware.tlc1.records import (
    CONTRACT_PURSE,
    CONTRACT_RECORD_MAX,
    Contract,
    Environment,
    Event,
    EventKind,
    Purse,
    RecordError,
    is_blank,
)
from hardware.tlc1.terminal import CardMacRejected, OpenedSession, SessionProof, Terminal
from validators.card_passes import PassRules

# A re-tap after a tear comes within seconds; after this long a new ride is charged.
RETAP_WINDOW_S = 120
# The same card at the same point this soon after a paid tap is a passback, not a new ride.
PASSBACK_WINDOW_S = 60
# An entry this long before an exit paid for the ride ending there; an older one did not (the
# backend closes an entry with no exit at the end of its service day, at the maximum fare).
METRO_RIDE_MAX_S = 4 * 3600
# The events a validation writes: only a torn one of these is a ride a re-tap may recover. An
# inspection or a parking payment left unratified paid for no ride.
RIDE_KINDS = frozenset({EventKind.METRO_ENTRY, EventKind.METRO_EXIT, EventKind.BUS_BOARDING})


class Outcome(StrEnum):
    CHARGED = "charged"
    PAID_AT_ENTRY = "paid_at_entry"  # a metro exit: the entry on the card paid the ride
    RETAP_AFTER_TEAR = "retap_after_tear"  # already paid: the event on the card proves it
    CONTRACT_PAID = "paid_by_contract"  # a valid pass (a contract) on the card covers the ride
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
    # A MAC failed either way: the card refused ours (it holds other keys) or the SAM refused
    # the card's. A cloned card, or one answering through something that changes its answers.
    CARD_NOT_GENUINE = "card_not_genuine"
    # The card refused a command CARD.md lets it refuse (e.g. 6900: its counter is exhausted).
    CARD_REFUSED = "card_refused"
    # A record the card returned breaks CARD.md's layout (the purse, say).
    CARD_RECORD_INVALID = "card_record_invalid"
    # The SAM cannot open a debit session: its key file lacks the level, or it is locked.
    SAM_CANNOT_SERVE = "sam_cannot_serve"
    # The reader or pcscd failed; the card may be fine.
    READER_FAILED = "reader_failed"
    # An error nobody expected (a bug): recorded so that the tap is not lost, and the gate goes on.
    VALIDATOR_FAULT = "validator_fault"


ACCEPTED_OUTCOMES = frozenset(
    {
        Outcome.CHARGED,
        Outcome.PAID_AT_ENTRY,
        Outcome.RETAP_AFTER_TEAR,
        Outcome.CONTRACT_PAID,
    }
)


@dataclass(frozen=True)
class TapPoint:
    """Where the validator stands, what a ride costs there, and which passes cover it."""

    network_id: int
    location: int
    validator: int
    kind: EventKind
    fare_vnd: int
    passes: PassRules = field(default_factory=PassRules)


@dataclass(frozen=True)
class Validation:
    outcome: Outcome
    serial: bytes | None = None
    charged_vnd: int = 0
    purse_after_vnd: int | None = None
    proof: SessionProof | None = None  # travels upstream with the tap record
    recovered: Event | None = None  # on a re-tap after a tear: the ride the card already paid
    contract: int = CONTRACT_PURSE  # what paid the ride: the purse, or a contract record 1..4

    @property
    def accepted(self) -> bool:
        return self.outcome in ACCEPTED_OUTCOMES


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
        """One tap: never raises for a card, a SAM or a reader failing; says why instead."""
        serial: bytes | None = None
        try:
            serial = self.terminal.select()
            if serial.hex() in self.denied_serials:
                return Validation(Outcome.CARD_DENIED, serial)
            return self._pay(serial)
        except CardIOError:
            return Validation(Outcome.CARD_LOST, serial)
        except ReaderIOError:
            return Validation(Outcome.READER_FAILED, serial)
        except CardMacRejected as rejected:
            # The card's answer goes upstream too: the backend, holding the master keys, checks it.
            return Validation(Outcome.CARD_NOT_GENUINE, serial, proof=rejected.proof)
        except IncorrectMac:
            return Validation(Outcome.CARD_NOT_GENUINE, serial)
        except CardCommandError:
            return Validation(Outcome.CARD_REFUSED, serial)
        except SamError:
            return Validation(Outcome.SAM_CANNOT_SERVE, serial)
        except RecordError:
            return Validation(Outcome.CARD_RECORD_INVALID, serial)

    def _pay(self, serial: bytes) -> Validation:
        now = self.clock()
        session = self.terminal.open_session(KeyLevel.DEBIT, read=(Sfi.ENVIRONMENT, 1))
        try:
            return self._decide(serial, session, now)
        finally:
            if session.is_open:
                # A refusal, or an error on the way: the card writes nothing of this session.
                # If the ABORT fails too, losing power drops the session all the same.
                with contextlib.suppress(ReaderError, CardCommandError):
                    session.abort()

    def _decide(self, serial: bytes, session: OpenedSession, now: int) -> Validation:
        environment_raw = session.record or b""
        if is_blank(environment_raw):
            return Validation(Outcome.NOT_PERSONALISED, serial)
        try:
            environment = Environment.decode(environment_raw)
            last_raw = session.read_record(Sfi.EVENT_LOG, 1)
            last = None if is_blank(last_raw) else Event.decode(last_raw)
        except RecordError:
            return Validation(Outcome.NOT_PERSONALISED, serial)
        if environment.network_id != self.point.network_id:
            return Validation(Outcome.OTHER_NETWORK, serial)
        refusal = self._refusal_from_history(last, ratified=session.ratified, now=now)
        if refusal is Outcome.RETAP_AFTER_TEAR:
            # Close with no change: the card's MAC then proves the event and the purse read here.
            purse = Purse.decode(session.read_record(Sfi.PURSE, 1)).value_vnd
            proof = session.close()
            self._ratify()
            return Validation(refusal, serial, 0, purse, proof, recovered=last)
        if refusal is not None:
            return Validation(refusal, serial)
        if self._entry_paid(last, now):
            purse = Purse.decode(session.read_record(Sfi.PURSE, 1)).value_vnd
            session.append_record(Sfi.EVENT_LOG, self._event(now, amount_vnd=0).encode())
            proof = session.close()
            self._ratify()
            return Validation(Outcome.PAID_AT_ENTRY, serial, 0, purse, proof)
        contract = self._covering_contract(session, now)
        if contract is not None:
            # The purse is neither touched nor read: the event names the pass that paid.
            event = self._event(now, amount_vnd=0, contract=contract)
            session.append_record(Sfi.EVENT_LOG, event.encode())
            proof = session.close()
            self._ratify()
            return Validation(Outcome.CONTRACT_PAID, serial, proof=proof, contract=contract)
        return self._charge(serial, session, now)

    def _charge(self, serial: bytes, session: OpenedSession, now: int) -> Validation:
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

    def _covering_contract(self, session: OpenedSession, now: int) -> int | None:
        """The first contract record holding a valid pass that covers this ride, if any.

        Passes fill the contracts file from record 1 (the desk writes a pass into the first
        empty slot), so the first empty record ends the search and a card with no pass costs
        one READ. Where no pass of the feed covers a ride here, nothing is read at all.
        """
        passes = self.point.passes
        if not passes:
            return None
        for record in range(1, CONTRACT_RECORD_MAX + 1):
            raw = session.read_record(Sfi.CONTRACTS, record)
            if is_blank(raw):
                return None
            try:
                contract = Contract.decode(raw)
            except RecordError:
                continue  # a damaged slot covers nothing; a later one still may
            if passes.covers(contract, network_id=self.point.network_id, now=now):
                return record
        return None

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
        # CARD.md: unratified with a very recent ride of this network, the card paid and never
        # showed green. Any validator of the network lets it through free, wherever the ride
        # was; an exit after a torn entry is free anyway, and is logged as the exit it is.
        torn_ride = not ratified and last.kind in RIDE_KINDS and 0 <= age_s <= RETAP_WINDOW_S
        if torn_ride and not self._entry_paid(last, now):
            return Outcome.RETAP_AFTER_TEAR
        same_point = (last.location, last.kind) == (self.point.location, self.point.kind)
        if ratified and same_point and 0 <= age_s <= PASSBACK_WINDOW_S:
            return Outcome.PASSBACK
        return None

    def _event(self, now: int, *, amount_vnd: int, contract: int = CONTRACT_PURSE) -> Event:
        return Event(
            at=now,
            kind=self.point.kind,
            network_id=self.point.network_id,
            location=self.point.location,
            validator=self.point.validator,
            contract=contract,
            amount=amount_vnd,
        )

    def _ratify(self) -> None:
        # The card has committed; if it leaves before this READ, the next tap recovers it.
        with contextlib.suppress(ReaderError, CardCommandError):
            self.terminal.ratify()
