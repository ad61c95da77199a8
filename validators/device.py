"""One validator device: its outbox, what it trusts, and the loop that syncs and uploads.

Deciding never waits for this loop: the gate decides with the trust it holds and writes to the
outbox; the loop, in its own thread, refreshes the trust every `sync_interval_s` and drains the
outbox whenever taps are pending and the uploader is not backing off. A sync also brings the
validator's epoch (its config): when staff enrolled it again, the outbox takes the new epoch,
and taps held after a `seq_conflict` go again in it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketing.shared.domain.invariants import require
from validators.backend import Backend, BackendError, BackendUnavailable, TapAnswer
from validators.bus_stop import StopSource, no_stop
from validators.deny_watch import DENY_WAIT_S_DEFAULT, DenyListWatcher
from validators.gate import Gate
from validators.health import HealthReporter
from validators.outbox import Outbox
from validators.sync import SYNC_INTERVAL_S_MAX, SYNC_INTERVAL_S_MIN, Syncer
from validators.trust import DenyListTooLarge, Trust, TrustStore
from validators.uploader import SeqConflictsHeld, Uploader, UploadStep

OUTBOX_FILE = "outbox.sqlite3"
# How long the loop sleeps when nothing is pending; a new tap wakes it at once.
IDLE_WAIT_S = 5.0
# The shortest pause between turns, so a backend answering nothing useful is not hammered.
LOOP_WAIT_MIN_S = 0.05
# Upload attempts before `drain` gives up (the taps stay in the outbox for the next run).
DRAIN_ATTEMPTS_MAX = 8


@dataclass(frozen=True)
class Drained:
    acknowledged: int
    pending: int
    last_error: BackendError | None
    held: int = 0  # answered seq_conflict: kept, waiting for the validator's next enrolment


class Device:
    def __init__(
        self,
        backend: Backend,
        state_dir: Path,
        *,
        validator_id: int,
        sync_interval_s: float,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        on_error: Callable[[str, Exception], None] = lambda _what, _error: None,
        on_answers: Callable[[int, Sequence[TapAnswer]], None] = lambda _epoch, _answers: None,
        deny_wait_s: int = DENY_WAIT_S_DEFAULT,
        stop: StopSource = no_stop,
    ) -> None:
        require(
            SYNC_INTERVAL_S_MIN <= sync_interval_s <= SYNC_INTERVAL_S_MAX,
            "sync interval out of bounds",
        )
        state_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(state_dir / OUTBOX_FILE)
        self._store = TrustStore(state_dir)
        self._syncer = Syncer(backend, self._store, validator_id=validator_id, clock=clock)
        self.uploader = Uploader(
            self.outbox, backend, validator_id=validator_id, clock=clock, monotonic=monotonic
        )
        self.gate = Gate(self.outbox, self._store.load(), clock=clock, stop=stop)
        self.health = HealthReporter(backend, self.outbox, validator_id=validator_id, clock=clock)
        # Held while the trust changes: by a sync, or by a deny-list page of the long poll.
        self._trust_lock = threading.Lock()
        self._deny_watcher = DenyListWatcher(
            backend,
            version=lambda: self.gate.trust.deny_version,
            apply=self.apply_deny_page,
            wait_s=deny_wait_s,
            monotonic=monotonic,
            on_error=on_error,
        )
        self._deny_wait_s = deny_wait_s
        self._clock = clock
        self._sync_interval_s = sync_interval_s
        self._monotonic = monotonic
        self._on_error = on_error
        # Told the backend's answers to each upload, with the epoch the batch named.
        self._on_answers = on_answers
        self._next_sync = 0.0
        self.wake = threading.Event()

    @property
    def trust(self) -> Trust:
        return self.gate.trust

    def close(self) -> None:
        self.outbox.close()

    def sync(self) -> bool:
        """Refreshes the trust now, then reports the device's health; False (and the old trust
        kept) when the backend failed."""
        self._next_sync = self._monotonic() + self._sync_interval_s
        synced, unreachable = True, False
        with self._trust_lock:
            try:
                trust = self._syncer.sync(self.gate.trust)
            except (BackendError, DenyListTooLarge) as error:
                self._on_error("sync", error)
                synced = False
                unreachable = isinstance(error, BackendUnavailable)
            else:
                self.gate.trust_now(trust)
                self.outbox.enrol(config_epoch(trust))
        if synced or not unreachable:
            self.report_health()
        return synced

    def report_health(self) -> bool:
        """Sends the health report now; False when the backend did not take it."""
        try:
            self.health.report(self.gate.trust)
        except BackendError as error:
            self._on_error("health", error)
            return False
        return True

    def apply_deny_page(self, since: int, page: dict[str, Any]) -> None:
        """Applies a deny-list page asked for from version `since`, from the next tap on; a page
        a sync overtook meanwhile is dropped (the next long poll asks from the sync's version).
        A page with entries is saved at once, so a restart still refuses the card."""
        with self._trust_lock:
            trust = self.gate.trust
            if trust.deny_version != since:
                return
            trust = trust.with_deny_page(page, now=int(self._clock()))
            if page["entries"]:
                self._store.save(trust)
            self.gate.trust_now(trust)

    def step(self) -> UploadStep:
        """One turn of the loop: sync when due, then upload one batch if any is pending."""
        if self._monotonic() >= self._next_sync:
            self.sync()
        result = self.uploader.step()
        self._note_upload(result)
        if result.error is not None:
            self._on_error("upload", result.error)
        self._answered(result)
        return result

    def _note_upload(self, result: UploadStep) -> None:
        if result.error is None and (result.acknowledged or result.conflicts):
            self.health.uploaded()

    def run(self, stop: threading.Event) -> None:
        """The background loop, until `stop` is set; `wake` cuts an idle wait short. The deny
        list's long poll runs beside it in a thread of its own (`validators.deny_watch`)."""
        if self._deny_wait_s:
            threading.Thread(
                target=self._deny_watcher.run, args=(stop,), name="deny-list", daemon=True
            ).start()
        while not stop.is_set():
            result = self.step()
            pending = self.outbox.pending_count()
            if result.acknowledged and pending:
                continue  # more batches waiting: send the next one now
            wait_s = min(IDLE_WAIT_S, self._next_sync - self._monotonic())
            if pending:
                wait_s = min(wait_s, self.uploader.retry_in_s)
            self.wake.wait(max(LOOP_WAIT_MIN_S, wait_s))
            self.wake.clear()

    def drain(
        self,
        *,
        attempts_max: int = DRAIN_ATTEMPTS_MAX,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Drained:
        """Uploads until the outbox is empty or `attempts_max` requests failed in a row."""
        acknowledged = 0
        failures = 0
        last_error: BackendError | None = None
        while self.outbox.pending_count() and failures < attempts_max:
            result = self.uploader.step()
            self._note_upload(result)
            if result.waiting:
                sleep(self.uploader.retry_in_s)
                continue
            if result.error is not None:
                failures += 1
                last_error = result.error
                self._on_error("upload", result.error)
                continue
            failures = 0
            acknowledged += result.acknowledged
            self._answered(result)
        held = len(self.outbox.held())
        return Drained(acknowledged, self.outbox.pending_count(), last_error, held)

    def _answered(self, result: UploadStep) -> None:
        if result.answers:
            self._on_answers(result.epoch, result.answers)
        if result.conflicts:
            self._on_error("upload", SeqConflictsHeld(result.conflicts))


def config_epoch(trust: Trust) -> int:
    """The epoch the backend last enrolled this validator in, as its config says (0 before
    any config, or from a backend before epochs)."""
    validator = (trust.config or {}).get("validator") or {}
    epoch = validator.get("epoch", 0)
    return epoch if type(epoch) is int and epoch >= 0 else 0
