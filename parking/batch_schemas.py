"""HTTP schemas of a handheld's batch of actions (`POST /v1/parking/actions`), and the mapping
between them and the batch use case's actions and answers."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from parking.application.batch_actions import (
    PARKING_ACTIONS_MAX,
    Action,
    Answer,
    EndAction,
    ExtendAction,
    StartAction,
)
from parking.application.ending import Ended
from parking.application.sessions import Payer, Payment, Started, StartRequest
from parking.domain.session import EndedBy, ParkingSession, StartedBy
from parking.schemas import (
    EndCreate,
    ExtensionCreate,
    RecordPublic,
    SessionCreate,
    SessionPublic,
)
from ticketing.shared.domain.errors import DomainError

CREATED = 201
OK = 200


class StartItem(SessionCreate):
    kind: Literal["start"]


class ExtendItem(ExtensionCreate):
    kind: Literal["extend"]
    session_id: UUID


class EndItem(EndCreate):
    kind: Literal["end"]
    session_id: UUID


ActionItem = Annotated[StartItem | ExtendItem | EndItem, Field(discriminator="kind")]


class ActionsCreate(BaseModel):
    """A handheld's queued actions, applied in order, each answered on its own."""

    model_config = ConfigDict(extra="forbid")

    actions: Annotated[list[ActionItem], Field(min_length=1, max_length=PARKING_ACTIONS_MAX)]

    def to_actions(self) -> list[Action]:
        return [_action(item) for item in self.actions]


class ActionProblem(BaseModel):
    code: str
    detail: str


class ActionAnswer(BaseModel):
    """One action's answer: its status as the one-by-one route would give it, the session
    (a start or an extension), the session and its record (an end), or the problem."""

    status: int
    session: SessionPublic | None = None
    record: RecordPublic | None = None
    problem: ActionProblem | None = None

    @classmethod
    def of(cls, answer: Answer, *, refused_status: int) -> ActionAnswer:
        """`refused_status`: the status of the refusal, when the answer is one."""
        match answer:
            case DomainError():
                problem = ActionProblem(code=answer.code, detail=str(answer))
                return cls(status=refused_status, problem=problem)
            case Started():
                created = OK if answer.replayed else CREATED
                return cls(status=created, session=SessionPublic.of(answer.session))
            case Ended():
                session, record = SessionPublic.of(answer.session), RecordPublic.of(answer.record)
                return cls(status=OK, session=session, record=record)
            case ParkingSession():
                return cls(status=OK, session=SessionPublic.of(answer))


class ActionsAnswer(BaseModel):
    items: list[ActionAnswer]


def _action(item: StartItem | ExtendItem | EndItem) -> Action:
    """A queued action as the use case takes it; a batch is staff's, so an attendant's."""
    match item:
        case StartItem():
            payer = Payer(account_id=item.account_id, code=item.code)
            request = StartRequest(
                start_id=item.start_id,
                lot_id=item.lot_id,
                plate=item.plate,
                vehicle_class=item.vehicle_class,
                payment=Payment(item.paid_until, item.quote_id),
                payer=payer,
                started_by=StartedBy.ATTENDANT,
                started_at=item.started_at,
            )
            return StartAction(request)
        case ExtendItem():
            payment = Payment(item.paid_until, item.quote_id)
            return ExtendAction(item.session_id, item.extension_id, payment)
        case EndItem():
            return EndAction(item.session_id, item.end_id, EndedBy.ATTENDANT, item.ended_at)
