"""Ended sessions of a batch paid and sealed together, as `Ending.settle` pays and seals one.

Their ends are saved first (the fee fixed), then the posts and voids of all their holds go to
the ledger as one batch (with the holds of the group's starts and extensions), the debits of
what the holds did not cover as another (rare: an overstay, or a hold that expired), and the
settled sessions and their detail records are saved together (with the group's started and
extended sessions). Each ledger command carries the id `Ending.settle` gives it, so a session
this path could not finish is finished by that one (the batch hands it over) without paying
twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eventsourcing.domain import Aggregate

from parking.application.ending import Ended, seal
from parking.application.ledger_batch import CommandOutcome, run_commands
from parking.domain.ports import Clock
from parking.domain.session import ParkingSession, rest_debit_id
from parking.domain.settlement import plan_settlement
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import Command, Debit, PostHold, VoidHold
from ticketing.accounts.domain.errors import HoldAlreadyResolved, HoldNotFound, LedgerBusy


@dataclass
class Bill:
    session: ParkingSession
    posted_vnd: int = 0
    rest_vnd: int = 0
    debited_vnd: int = 0
    # A ledger answer this path does not decide on (the ledger busy): `Ending.settle` retries.
    handed_over: bool = False


@dataclass
class Bills:
    """The bills of ended sessions, and the posts and voids of their holds that pay them."""

    bills: list[Bill]
    commands: list[Command]
    uses: list[tuple[Bill, int]]

    def paid(self, ledger: Ledger, outcomes: Sequence[CommandOutcome]) -> list[Bill]:
        """What each paid, given the ledger's outcomes of `commands`; the rests debited."""
        for (bill, post_vnd), outcome in zip(self.uses, outcomes, strict=True):
            _count_use(bill, post_vnd, outcome)
        _debit_rests(ledger, [bill for bill in self.bills if not bill.handed_over])
        return self.bills


def billed(sessions: Sequence[ParkingSession]) -> Bills:
    """The posts of the sessions' fees from their holds (the rest of each hold voided)."""
    bills = [Bill(session) for session in sessions]
    commands: list[Command] = []
    uses: list[tuple[Bill, int]] = []
    for bill in bills:
        session = bill.session
        plan = plan_settlement(
            [(hold["hold_id"], int(hold["amount_vnd"])) for hold in session.holds],
            session.fee_vnd,
        )
        bill.rest_vnd = plan.rest_vnd
        for use in plan.uses:
            if use.post_vnd > 0:
                commands.append(PostHold(session.account_id, use.hold_id, use.post_vnd))
            else:
                commands.append(VoidHold(session.account_id, use.hold_id))
            uses.append((bill, use.post_vnd))
    return Bills(bills, commands, uses)


def _count_use(bill: Bill, post_vnd: int, outcome: CommandOutcome) -> None:
    """As `Ending._use_hold`: a hold that ended without this post leaves it to a debit."""
    if outcome is None:
        bill.posted_vnd += post_vnd
    elif isinstance(outcome, HoldAlreadyResolved | HoldNotFound):
        bill.rest_vnd += post_vnd
    else:
        bill.handed_over = True


def _debit_rests(ledger: Ledger, bills: Sequence[Bill]) -> None:
    """As `Ending._debit_rest`: what the account cannot pay is left unpaid."""
    owing = [bill for bill in bills if bill.rest_vnd > 0]
    commands: list[Command] = []
    for bill in owing:
        session = bill.session
        description = f"parking {session.lot_id} {session.plate_display} beyond the paid time"
        commands.append(
            Debit(session.account_id, rest_debit_id(session.id), bill.rest_vnd, description)
        )
    for bill, outcome in zip(owing, run_commands(ledger, commands), strict=True):
        if outcome is None:
            bill.debited_vnd = bill.rest_vnd
        elif isinstance(outcome, LedgerBusy):
            bill.handed_over = True


def sealed(bills: Sequence[Bill], clock: Clock) -> tuple[list[Ended], list[Aggregate]]:
    """The settled sessions and their records, to save together."""
    at = clock()
    ended: list[Ended] = []
    changed: list[Aggregate] = []
    for bill in bills:
        session = bill.session
        unpaid_vnd = bill.rest_vnd - bill.debited_vnd
        session.settle(bill.posted_vnd, bill.debited_vnd, unpaid_vnd, at)
        record = seal(session, at)
        ended.append(Ended(session, record))
        changed.extend([session, record])
    return ended, changed
