"""A batch of starts, extensions and ends applied with group commit: each answered as if sent
alone, the whole costing a few transactions instead of several an action.

The actions are taken in order and gathered into groups in which no two touch the same session,
plate or scanned code (an action that would is the first of the next group, so a start and the
end of its session in one batch happen in that order). A group is written in the order the
one-by-one use cases write one action:

1. its ends (each session's fee fixed, its plate closed), one parking save;
2. the posts and voids of the ended sessions' holds, under the ids `Ending.settle` gives them,
   and the holds of its starts and extensions, under the ids `Sessions.start` and
   `Sessions.extend` give them, one ledger transaction (`run_commands`); the debits of what
   the holds did not cover another (rare);
3. its started and extended sessions, plates and code uses, with the settled sessions and their
   detail records, one parking save.

So a process that dies between two steps leaves what the one-by-one path leaves at the same
point: ended sessions not yet settled, with their money moved or not (settled by a repeat of
the end or by the sweeper, whose posts are then repeats), and holds no session names (released
by `OrphanHolds` when they are old, or found by a repeat of the request). A refusal is the
refused action's answer alone: the ledger's refusal of a hold (a short balance, a blocked
account) answers that action, and the rest of the group goes on. Anything off the common path
is answered by the one-by-one use case itself, after the group: a repeat of an action already
applied, a plate whose session looks open (refused there, with the hold an earlier attempt left
released), a hold the ledger holds under another request's terms, and every action of a group
whose save met another writer's (the optimistic check refused it whole; those use cases re-read
and retry).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import RecordConflictError

from parking.application.batch_actions import (
    PARKING_ACTIONS_MAX,
    Action,
    Answer,
    EndAction,
    ExtendAction,
    StartAction,
)
from parking.application.batch_plans import Closing, Opening, Plan, Planner, Raising
from parking.application.batch_reads import BatchReads
from parking.application.batch_settlement import billed, sealed
from parking.application.ending import Ending
from parking.application.ledger_batch import CommandOutcome, run_commands
from parking.application.sessions import Sessions, Started, StartRequest
from parking.application.store import ParkingStore
from parking.domain.action_time import acted_at
from parking.domain.occupancy import PlateAtLot
from parking.domain.plate import normalise_plate
from parking.domain.session import session_id_for
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import Command
from ticketing.accounts.domain.errors import TransferConflict
from ticketing.shared.domain.errors import DomainError
from ticketing.shared.domain.invariants import require


class ActionBatches:
    """Parking actions queued by a handheld, applied together."""

    def __init__(
        self, store: ParkingStore, sessions: Sessions, ending: Ending, ledger: Ledger
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.ending = ending
        self.ledger = ledger
        self._reads = BatchReads(store)
        self._planner = Planner(sessions, ending, self._reads)
        # One batch at a time per process: the memory of reads is shared, and a batch's
        # groups are already as large as its actions allow.
        self._lock = threading.Lock()
        # Whether the memory must look at the store's log before the next plan: after a write
        # of this process's own that went past it (one by one), or another writer's since.
        self._stale = True

    def apply(self, actions: Sequence[Action]) -> list[Answer]:
        """Each action's answer, in order: what it did, or the refusal it met."""
        require(len(actions) <= PARKING_ACTIONS_MAX, "batches are bounded by PARKING_ACTIONS_MAX")
        answers: dict[int, Answer] = {}
        with self._lock:
            self._reads.refresh()
            self._stale = False
            self._reads.prefetch(_new_ids(actions))
            group: list[Plan] = []
            taken: set[UUID] = set()
            for index, action in enumerate(actions):
                if not taken.isdisjoint(_named(action)):
                    # Its session or plate is changed in this group: read them once written.
                    self._write(group, actions, answers)
                    group, taken = [], set()
                try:
                    plan = self._plan(index, action)
                    if plan is not None and not taken.isdisjoint(plan.keys):
                        self._write(group, actions, answers)
                        group, taken = [], set()
                        plan = self._plan(index, action)
                except DomainError as error:
                    answers[index] = error
                    continue
                if plan is None:
                    self._write(group, actions, answers)
                    group, taken = [], set()
                    answers[index] = self._alone(action)
                    self._stale = True
                else:
                    group.append(plan)
                    taken |= plan.keys
            self._write(group, actions, answers)
        require(len(answers) == len(actions), "every action is answered")
        return [answers[index] for index in range(len(actions))]

    def _plan(self, index: int, action: Action) -> Plan | None:
        """The action's plan, read after what was written since the memory last looked (the
        next batch looks first thing anyway)."""
        if self._stale:
            self._reads.refresh()
            self._stale = False
        return self._planner.plan(index, action)

    def _write(
        self, group: list[Plan], actions: Sequence[Action], answers: dict[int, Answer]
    ) -> None:
        """Writes a group's holds, then its aggregates, then settles its ends; what could not
        go that way goes one by one after."""
        if not group:
            return
        self._stale = True
        try:
            self._write_group(group, actions, answers)
        except BaseException:
            # Stopped half way: what the memory holds of the group may be changed and unsaved.
            self._reads.forget(key for plan in group for key in plan.keys)
            raise

    def _write_group(
        self, group: list[Plan], actions: Sequence[Action], answers: dict[int, Answer]
    ) -> None:
        alone: list[int] = []
        ends = self._end([plan for plan in group if isinstance(plan, Closing)], alone)
        bills = billed([plan.session for plan in ends])
        holding = [plan for plan in group if plan.hold is not None]
        holds: list[Command] = [plan.hold for plan in holding if plan.hold is not None]
        # The posts and voids first: what an end releases is there for the starts after it.
        outcomes = run_commands(self.ledger, [*bills.commands, *holds])
        paid = bills.paid(self.ledger, outcomes[: len(bills.commands)])
        refused = self._refused(holding, outcomes[len(bills.commands) :], answers, alone)
        live = [p for p in group if not isinstance(p, Closing) and p.index not in refused]
        index_of = {plan.session.id: plan.index for plan in ends}
        alone.extend(index_of[bill.session.id] for bill in paid if bill.handed_over)
        ended, settled = sealed([bill for bill in paid if not bill.handed_over], self.ending.clock)
        changed = [aggregate for plan in live for aggregate in plan.changes()]
        try:
            recordings = self.store.save(*changed, *settled)
        except RecordConflictError:
            self._reads.forget(aggregate.id for aggregate in [*changed, *settled])
            alone.extend([plan.index for plan in live] + [index_of[e.session.id] for e in ended])
            live, ended = [], []
        else:
            self._reads.saved(changed, recordings, finished=settled)
        for plan in live:
            if isinstance(plan, Opening):
                assert plan.session is not None
                answers[plan.index] = Started(self._reads.detached(plan.session), replayed=False)
            elif isinstance(plan, Raising):
                answers[plan.index] = self._reads.detached(plan.session)
        for one in ended:
            answers[index_of[one.session.id]] = one
        for index in sorted(alone):
            answers[index] = self._alone(actions[index])

    def _end(self, closings: list[Closing], alone: list[int]) -> list[Closing]:
        """Saves the ends (each fee fixed before any money moves); those saved."""
        changed = [aggregate for plan in closings for aggregate in plan.changes()]
        if not changed:
            return []
        try:
            recordings = self.store.save(*changed)
        except RecordConflictError:
            self._reads.forget(aggregate.id for aggregate in changed)
            alone.extend(plan.index for plan in closings)
            return []
        self._reads.saved(changed, recordings)
        return closings

    @staticmethod
    def _refused(
        holding: Sequence[Plan],
        outcomes: Sequence[CommandOutcome],
        answers: dict[int, Answer],
        alone: list[int],
    ) -> set[int]:
        """The plans whose hold the ledger refused: answered so, or sent down the one-by-one
        path when the ledger holds it under an earlier attempt's terms."""
        refused: set[int] = set()
        for plan, outcome in zip(holding, outcomes, strict=True):
            if outcome is None:
                continue
            refused.add(plan.index)
            if isinstance(outcome, TransferConflict):
                alone.append(plan.index)  # an earlier attempt's hold: `Sessions._hold` reads it
            else:
                answers[plan.index] = outcome
        return refused

    def _alone(self, action: Action) -> Answer:
        """The action by its one-by-one use case: its answer, or its refusal."""
        try:
            match action:
                case StartAction():
                    return self.sessions.start(action.request)
                case ExtendAction():
                    return self.sessions.extend(
                        action.session_id, action.extension_id, action.payment
                    )
                case EndAction():
                    at = acted_at(action.at, self.ending.clock())
                    return self.ending.end(action.session_id, action.end_id, action.ended_by, at=at)
        except DomainError as error:
            return error


def _named(action: Action) -> set[UUID]:
    """The session an action names, and a start's plate: known before anything is read."""
    match action:
        case StartAction():
            return set(_start_ids(action.request))
        case ExtendAction() | EndAction():
            return {action.session_id}


def _start_ids(request: StartRequest) -> list[UUID]:
    ids = [session_id_for(request.start_id)]
    with contextlib.suppress(DomainError):  # refused when the start is planned
        plate = normalise_plate(request.plate)
        ids.append(PlateAtLot.create_id(request.lot_id, plate.compact))
    return ids


def _new_ids(actions: Sequence[Action]) -> list[UUID]:
    """The sessions and plates a batch's starts would create: most were never recorded."""
    ids: list[UUID] = []
    for action in actions:
        if isinstance(action, StartAction):
            ids.extend(_start_ids(action.request))
    return ids
