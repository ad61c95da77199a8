"""Moves a journey's money on the ledger, every transfer id derived from the journey.

A repeat of the same step (a tap re-applied after a crash, a day closed twice) meets the same
transfer id: the ledger returns the first receipt, and a hold already posted is read back rather
than posted again. A refusal (insufficient funds, a blocked account) is recorded on the journey.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import Command, Debit, PlaceHold, PostHold, TopUp, VoidHold
from ticketing.accounts.domain.errors import HoldAlreadyResolved, LedgerError
from ticketing.accounts.domain.transfer import HoldOutcome
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_status import PaidFrom

# A metro hold outlives the service day it began in, so the day-end close still finds it
# pending and posts it, rather than the ledger expiring it first.
METRO_HOLD_TTL_S = 3 * 24 * 3600
PURSE_REFUND_PREFIX = "top-up:purse-refund:"

log = logging.getLogger(__name__)


def transfer_id(journey: Journey, step: str) -> str:
    return f"journey:{journey.id.hex}:{step}"


def refund_reference(journey: Journey, step: str | None) -> str:
    return f"journey-{journey.id.hex}-refund" + (f"-{step}" if step else "")


def unused_step(journey: Journey, step: str, named: Callable[[str], str]) -> str:
    """`step`, unless the transfer it names was made already: a late bus tap that split a ride
    (`bus_splits`) takes legs off a journey, so a leg count or merge count names a step again.
    The ledger would answer such a repeat with the first receipt and move nothing, so the step
    is then the first repair step the journey has not used."""
    if named(step) not in journey.transfers:
        return step
    number = journey.repairs
    while named(f"repair:{number}") in journey.transfers:
        number += 1
    return f"repair:{number}"


class Charger:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        # How many commands the ledger has refused and run for this charger (the follower
        # watches them, to know when a rider short of money pays again).
        self.refusals = 0
        self.passed = 0

    def hold(self, journey: Journey, amount_vnd: int, step: str, at: datetime) -> None:
        if journey.paid_from is not PaidFrom.ACCOUNT or amount_vnd <= 0:
            return
        hold_id = transfer_id(journey, step)
        command = PlaceHold(
            journey.account_id, hold_id, amount_vnd, METRO_HOLD_TTL_S, "metro entry"
        )
        if self._run(journey, command, at):
            journey.charge(transfer_id=hold_id, kind="hold", amount_vnd=amount_vnd, at=at)

    def settle(self, journey: Journey, total_vnd: int, step: str, at: datetime) -> None:
        """Brings what the account paid for the journey up to `total_vnd`: the open hold is
        posted first (0 for a free ride, which releases it), the rest debited."""
        if journey.paid_from is not PaidFrom.ACCOUNT:
            return
        due_vnd = max(0, total_vnd - journey.charged_vnd)
        if journey.hold_id is not None:
            posted_vnd = min(due_vnd, journey.held_vnd)
            hold_id = journey.hold_id
            if not self._post(journey, hold_id, posted_vnd, at):
                return
            journey.charge(transfer_id=f"{hold_id}:post", kind="post", amount_vnd=posted_vnd, at=at)
            due_vnd -= posted_vnd
        if due_vnd > 0:
            self._debit(journey, due_vnd, step, at)

    def void(self, journey: Journey, at: datetime) -> None:
        """Releases the journey's open hold, charging nothing (a journey the feed cannot price
        is our data's fault, not the rider's)."""
        if journey.paid_from is not PaidFrom.ACCOUNT or journey.hold_id is None:
            return
        hold_id = journey.hold_id
        if self._void(journey, hold_id, at):
            journey.charge(transfer_id=f"{hold_id}:void", kind="void", amount_vnd=0, at=at)

    def adjust(self, journey: Journey, total_vnd: int, step: str, at: datetime) -> None:
        """Brings what the account paid for the journey's complete legs to `total_vnd` when its
        legs were paired again: debits what is missing or refunds what was paid beyond it. An
        open leg's hold is left for that leg's exit."""
        if journey.paid_from is not PaidFrom.ACCOUNT:
            return
        due_vnd = total_vnd - journey.charged_vnd
        if due_vnd > 0:
            self._debit(journey, due_vnd, step, at)
        elif due_vnd < 0:
            self.refund(journey, -due_vnd, at, step)

    def refund(
        self, journey: Journey, amount_vnd: int, at: datetime, step: str | None = None
    ) -> None:
        """Gives `amount_vnd` back to the account; `step` names a refund after the first (a
        journey whose legs were paired again may be refunded more than once)."""
        if journey.paid_from is not PaidFrom.ACCOUNT or amount_vnd <= 0:
            return
        reference = refund_reference(journey, step)
        if f"top-up:{reference}" in journey.transfers:
            named = lambda s: f"top-up:{refund_reference(journey, s)}"  # noqa: E731
            reference = refund_reference(journey, unused_step(journey, step or "", named))
        if self._run(journey, TopUp(journey.account_id, amount_vnd, reference), at):
            journey.charge(
                transfer_id=f"top-up:{reference}", kind="refund", amount_vnd=amount_vnd, at=at
            )

    def refund_purse(self, journey: Journey, at: datetime) -> None:
        """Gives back to the account what the card's purse paid beyond the journey's fare: the
        metro entry gate took the dearest ride from there, and a transfer may cost less than
        the rides the validators charged one by one. Each refund of a journey is numbered, so
        the same step applied again meets the ledger's first receipt, and a tap applied again
        finds nothing overpaid."""
        amount_vnd = journey.purse_overpaid_vnd
        # An open leg's boarding is paid for but not yet priced: wait until every leg is.
        if journey.paid_from is not PaidFrom.CARD_PURSE or amount_vnd <= 0 or not journey.complete:
            return
        # Numbered per journey: legs paired again or a transfer merged in may refund again.
        given = sum(1 for t in journey.transfers if t.startswith(PURSE_REFUND_PREFIX))
        reference = f"purse-refund:{journey.id.hex}:{given + 1}"
        top_up = TopUp(journey.account_id, amount_vnd, reference)
        if self._run(journey, top_up, at):
            journey.refund_purse(transfer_id=top_up.transfer_id, amount_vnd=amount_vnd, at=at)

    def _debit(self, journey: Journey, amount_vnd: int, step: str, at: datetime) -> None:
        debit_id = transfer_id(
            journey, unused_step(journey, step, lambda s: transfer_id(journey, s))
        )
        if self._run(journey, Debit(journey.account_id, debit_id, amount_vnd, "ride"), at):
            journey.charge(transfer_id=debit_id, kind="debit", amount_vnd=amount_vnd, at=at)

    def _void(self, journey: Journey, hold_id: str, at: datetime) -> bool:
        try:
            self.ledger.execute(VoidHold(journey.account_id, hold_id))
        except HoldAlreadyResolved:
            hold = self.ledger.get_transfer(hold_id)
            if hold is None or hold.outcome is not HoldOutcome.VOIDED:
                # Expired, or posted by someone else: either way no longer held by us.
                log.warning("hold %s of journey %s was already resolved", hold_id, journey.id)
        except LedgerError as error:
            self.refusals += 1
            journey.fail_charge(code=error.code, reason=str(error), at=at)
            return False
        self.passed += 1
        return True

    def _post(self, journey: Journey, hold_id: str, amount_vnd: int, at: datetime) -> bool:
        try:
            self.ledger.execute(PostHold(journey.account_id, hold_id, amount_vnd))
        except HoldAlreadyResolved as error:
            hold = self.ledger.get_transfer(hold_id)
            if (
                hold is not None
                and hold.outcome is HoldOutcome.POSTED
                and hold.posted_vnd == amount_vnd
            ):
                return True  # posted by an earlier run of this same step
            # Posted with another amount (a day-end close racing this exit from another
            # process), voided or expired: say so on the journey rather than guess.
            journey.fail_charge(code=error.code, reason=str(error), at=at)
            return False
        except LedgerError as error:
            self.refusals += 1
            journey.fail_charge(code=error.code, reason=str(error), at=at)
            return False
        self.passed += 1
        return True

    def _run(self, journey: Journey, command: PlaceHold | Debit | TopUp, at: datetime) -> bool:
        try:
            self.ledger.execute(command)
        except LedgerError as error:
            self.refusals += 1
            journey.fail_charge(code=error.code, reason=str(error), at=at)
            return False
        self.passed += 1
        return True


class DeferredCharger(Charger):
    """Collects the ledger commands instead of running them, recording each charge on its
    journey as if it succeeded. The caller runs them all with `Ledger.execute_all` before it
    saves the journeys; when the ledger refuses one, the journeys are thrown away and the taps
    applied again, the refused one by a `Charger`, which records the refusal as it happens."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger)
        self.commands: list[Command] = []

    def _void(self, journey: Journey, hold_id: str, at: datetime) -> bool:  # noqa: ARG002
        self.commands.append(VoidHold(journey.account_id, hold_id))
        return True

    def _post(self, journey: Journey, hold_id: str, amount_vnd: int, at: datetime) -> bool:  # noqa: ARG002
        self.commands.append(PostHold(journey.account_id, hold_id, amount_vnd))
        return True

    def _run(self, journey: Journey, command: PlaceHold | Debit | TopUp, at: datetime) -> bool:  # noqa: ARG002
        self.commands.append(command)
        return True
