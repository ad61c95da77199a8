"""Draining the outbox to `POST /v1/taps/batch`: bounded batches, the same seqs until answered.

Every answer acknowledges its tap: `accepted`, `refused` (the tap is recorded upstream with the
backend's reason, which the outbox keeps) and `duplicate` (an earlier upload landed and only its
answer was lost), but `seq_conflict`: another tap holds that number upstream, so the outbox holds
this one until the device is enrolled again (`Outbox.enrol`), and the step says so, for the
operator to see. A batch holds taps of one epoch, which it names. A failed request acknowledges
nothing; the batch is sent again, with the same seqs, after an exponential backoff with jitter,
so a backend coming back is not stampeded.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ticketing.shared.domain.invariants import require
from validators.backend import Backend, BackendError, TapAnswer
from validators.outbox import SEQ_CONFLICT, Acknowledgement, Outbox

# Taps per request: well under the backend's TAP_BATCH_MAX (500), so a batch over a slow
# mobile link finishes within the request timeout.
UPLOAD_BATCH_MAX = 100
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 60.0
ANSWER_STATUSES = frozenset({"accepted", "refused", "duplicate", SEQ_CONFLICT})


@dataclass(frozen=True)
class UploadStep:
    """What one step did: taps acknowledged, or the error that left them pending."""

    acknowledged: int = 0
    error: BackendError | None = None
    waiting: bool = False  # still backing off after an earlier failure; nothing was sent
    conflicts: int = 0  # taps answered seq_conflict, held until the device is enrolled again
    # The backend's answer for each tap of the batch sent, and the epoch the batch named.
    answers: tuple[TapAnswer, ...] = ()
    epoch: int = 0


class Uploader:
    def __init__(
        self,
        outbox: Outbox,
        backend: Backend,
        *,
        validator_id: int,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        batch_max: int = UPLOAD_BATCH_MAX,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        require(1 <= batch_max <= UPLOAD_BATCH_MAX, "upload batch size out of bounds")
        self._outbox = outbox
        self._backend = backend
        self._validator_id = validator_id
        self._clock = clock
        self._monotonic = monotonic
        self._batch_max = batch_max
        self._jitter = jitter
        self._failures = 0
        self._next_attempt = 0.0

    @property
    def retry_in_s(self) -> float:
        """Seconds until the next attempt is allowed (0 when not backing off)."""
        return max(0.0, self._next_attempt - self._monotonic())

    def step(self) -> UploadStep:
        """Uploads the oldest pending batch, unless still backing off or nothing is pending."""
        if self._monotonic() < self._next_attempt:
            return UploadStep(waiting=True)
        batch = self._outbox.pending(self._batch_max)
        if not batch:
            return UploadStep()
        epoch = batch[0].epoch
        batch = [tap for tap in batch if tap.epoch == epoch]
        try:
            bodies = [t.upload_body() for t in batch]
            answers = self._backend.upload(self._validator_id, bodies, epoch=epoch)
        except BackendError as error:
            self._back_off()
            return UploadStep(error=error)
        sent = {tap.seq for tap in batch}
        # Only answers for taps of this batch count; a tap left unanswered goes again next time.
        answered = tuple(a for a in answers if a.seq in sent and a.status in ANSWER_STATUSES)
        acknowledgements = [Acknowledgement(a.seq, a.status, a.reason) for a in answered]
        done = self._outbox.acknowledge(acknowledgements, at=int(self._clock()))
        self._failures = 0
        self._next_attempt = 0.0
        conflicts = sum(a.status == SEQ_CONFLICT for a in acknowledgements)
        return UploadStep(acknowledged=done, conflicts=conflicts, answers=answered, epoch=epoch)

    def _back_off(self) -> None:
        self._failures += 1
        ceiling = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** min(self._failures - 1, 16))
        # Half fixed, half random: devices that lost the link together do not retry together.
        self._next_attempt = self._monotonic() + ceiling * (0.5 + self._jitter() / 2)


class SeqConflictsHeld(Exception):
    """Taps the backend answered `seq_conflict`: they are kept, and wait for an enrolment."""

    code = "seq_conflicts_held"

    def __init__(self, taps: int) -> None:
        super().__init__(
            f"{taps} taps reuse sequence numbers the backend holds (was this device's state "
            "wiped?): they are kept in the outbox; enrol the validator again to send them"
        )
