"""What a cycle computes when it closes, streamed: its lines (kept by the line store as they
come), each operator's revenue, the suspense, the positions and the payouts.

Memory holds the per-operator totals and the digest, never the day's movements or lines.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from itertools import islice
from uuid import UUID

from clearing.application.ledger_movements import ClassifiedMovement
from clearing.application.revenue_lines import Line, OperatorLine, RevenueAttribution
from clearing.domain.bank_accounts import Party
from clearing.domain.classification import Category, Origin
from clearing.domain.cycle import BankParty, CycleSummary, OperatorTotals, Payout
from clearing.domain.cycle_lines import SUSPENSE_OPERATOR, CycleLine, LinesDigest
from clearing.domain.payouts import end_to_end_id, message_id
from clearing.domain.positions import RevenueLine, net_positions
from clearing.domain.terms import SettlementTerms

# Movements attributed together: the journeys and parking aggregates they name are read in one
# query per section. A section and its aggregates are what memory holds of the day's movements.
ATTRIBUTION_SECTION = 1_000
# Sections whose aggregates are being read while the lines of an earlier one are made: the
# store runs that many queries at once.
SECTIONS_READ_AHEAD = 2


@dataclass
class CycleTally:
    """Running totals of a cycle's lines and movements."""

    digest: LinesDigest = field(default_factory=LinesDigest)
    movements: int = 0
    revenue: dict[str, int] = field(default_factory=dict)
    operator_lines: dict[str, int] = field(default_factory=dict)
    suspense_lines: int = 0
    suspense_vnd: int = 0
    top_ups_vnd: int = 0
    rider_payouts_vnd: int = 0
    pass_sales_vnd: int = 0

    def count_movement(self, item: ClassifiedMovement) -> None:
        self.movements += 1
        category = item.classification.category if item.classification else None
        if category is Category.TOP_UP:
            self.top_ups_vnd += item.movement.amount_vnd
        elif category is Category.PAYOUT_TO_RIDER:
            self.rider_payouts_vnd += item.movement.amount_vnd
        elif category is Category.PASS_SALE:
            self.pass_sales_vnd += item.movement.amount_vnd

    def count_line(self, line: CycleLine) -> None:
        self.digest.add(line)
        if line.in_suspense:
            self.suspense_lines += 1
            self.suspense_vnd += line.amount_vnd
            return
        operator = line.operator_id
        self.revenue[operator] = self.revenue.get(operator, 0) + line.amount_vnd
        self.operator_lines[operator] = self.operator_lines.get(operator, 0) + 1


def cycle_lines(
    movements: Iterable[ClassifiedMovement],
    attribution: RevenueAttribution,
    tally: CycleTally,
    carried: Iterable[CycleLine] = (),
) -> Iterator[CycleLine]:
    """Each movement's lines, numbered in the store's order, then the lines carried from
    earlier cycles numbered after them; all counted into `tally`."""
    line_no = 0
    with ThreadPoolExecutor(SECTIONS_READ_AHEAD, thread_name_prefix="clearing-reads") as reader:
        for section, attributing in _attributed(movements, attribution, reader):
            for item in section:
                tally.count_movement(item)
                for line in attributing.lines_of(item):
                    line_no += 1
                    kept = kept_line(line_no, item, line)
                    tally.count_line(kept)
                    yield kept
    for settling in carried:
        line_no += 1
        kept = replace(settling, line_no=line_no)
        tally.count_line(kept)
        yield kept


def _attributed(
    movements: Iterable[ClassifiedMovement], attribution: RevenueAttribution, reader: Executor
) -> Iterator[tuple[list[ClassifiedMovement], RevenueAttribution]]:
    """Each section of movements with its attribution. The aggregates of the next
    `SECTIONS_READ_AHEAD` sections are read by `reader` while the lines of this one are made
    here: the store answers those queries while this process works. Memory holds that many
    sections and their aggregates, and this one."""
    iterator = iter(movements)
    ahead: deque[tuple[list[ClassifiedMovement], Future[RevenueAttribution]]] = deque()
    while True:
        while len(ahead) < SECTIONS_READ_AHEAD:
            section = list(islice(iterator, ATTRIBUTION_SECTION))
            if not section:
                break
            ahead.append((section, reader.submit(attribution.for_section, section)))
        if not ahead:
            return
        section, reading = ahead.popleft()
        yield section, reading.result()


def kept_line(line_no: int, item: ClassifiedMovement, line: Line) -> CycleLine:
    reference = item.movement.reference
    classification = item.classification
    category = classification.category.value if classification else ""
    origin = classification.origin.value if classification else ""
    transaction_id = classification.origin_id if classification else ""
    if classification is not None and classification.origin is Origin.TAP:
        # A tap's id is a UUID with dashes; every transaction id in the files is 32 hex digits.
        transaction_id = UUID(transaction_id).hex
    if isinstance(line, OperatorLine):
        return CycleLine(
            line_no,
            line.notification_id,
            line.operator_id,
            line.amount_vnd,
            category,
            origin,
            transaction_id,
            reference,
        )
    return CycleLine(
        line_no,
        line.notification_id,
        SUSPENSE_OPERATOR,
        line.revenue_vnd,
        category,
        origin,
        transaction_id,
        reference,
        line.code.value,
        line.reason,
    )


def summarise(
    *,
    day: date,
    seq: int,
    cut_off: int,
    purse_cut_off: int,
    tally: CycleTally,
    terms: SettlementTerms,
    balances: Mapping[str, int],
) -> CycleSummary:
    """The summary a cycle closes with: positions from the tally, each operator's account with
    the scheme carried from `balances` (what it owed after its last cycle), and its payout."""
    positions = net_positions(
        (RevenueLine(op, vnd) for op, vnd in sorted(tally.revenue.items())),
        terms.commission_bps,
        tally.suspense_vnd,
    )
    operators: list[OperatorTotals] = []
    payouts: list[Payout] = []
    for position in positions.operators:
        operator_id = position.operator_id
        opening = balances.get(operator_id, 0)
        paid = max(0, opening + position.net_vnd)
        operators.append(
            OperatorTotals(
                operator_id=operator_id,
                lines=tally.operator_lines[operator_id],
                revenue_vnd=position.revenue_vnd,
                commission_bps=position.commission_bps,
                commission_vnd=position.commission_vnd,
                net_vnd=position.net_vnd,
                opening_vnd=opening,
                paid_vnd=paid,
                closing_vnd=opening + position.net_vnd - paid,
            )
        )
        if paid > 0:
            payee = bank_party(terms.payee(operator_id))
            payouts.append(Payout(end_to_end_id(day, operator_id), operator_id, paid, payee))
    return CycleSummary(
        cut_off=cut_off,
        purse_cut_off=purse_cut_off,
        movements=tally.movements,
        lines=tally.digest.count,
        lines_sha256=tally.digest.hexdigest(),
        operators=tuple(operators),
        suspense_lines=tally.suspense_lines,
        suspense_vnd=tally.suspense_vnd,
        top_ups_vnd=tally.top_ups_vnd,
        rider_payouts_vnd=tally.rider_payouts_vnd,
        pass_sales_vnd=tally.pass_sales_vnd,
        message_id=message_id(day, seq) if payouts else "",
        debtor=bank_party(terms.scheme),
        payouts=tuple(payouts),
    )


def bank_party(party: Party) -> BankParty:
    account = party.account
    return BankParty(party.name, account.number, account.bic, account.kind.value)
