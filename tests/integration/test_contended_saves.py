"""A writer that loses every race for one account to another process on the same SQLite file:
no doubles, the store's own optimistic check refuses each of its saves."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import pytest

from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.account import AccountStatus
from ticketing.accounts.domain.commands import TopUp
from ticketing.accounts.domain.errors import LedgerBusy
from ticketing.shared.domain.errors import Contended
from ticketing.shared.optimistic import SAVE_ATTEMPTS_MAX

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
TOP_UP_VND = 1_000


def test_a_writer_beaten_on_every_attempt_by_another_process_is_answered_busy(
    tmp_path: Path,
) -> None:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "l.db")}
    # The other process: its own Ledger on the same file.
    rival = Ledger(env)
    account_id = rival.open_account(rider_category=0).id
    rival_top_ups = count(1)

    def clock_of_a_slow_writer() -> datetime:
        # The writer asks the time after reading the account and before saving it: the rival
        # tops the account up in between, every time.
        rival.execute(TopUp(account_id, TOP_UP_VND, f"rival-{next(rival_top_ups)}"))
        return T0

    writer = Ledger(env, clock=clock_of_a_slow_writer)
    with pytest.raises(LedgerBusy) as raised:
        writer.block_account(account_id, reason="fraud")
    assert isinstance(raised.value, Contended)
    assert (raised.value.code, raised.value.attempts) == ("ledger_busy", SAVE_ATTEMPTS_MAX)
    # Every attempt lost to a real save of the rival, and none of the writer's was stored.
    stored = rival.get_account(account_id)
    assert stored.posted_vnd == SAVE_ATTEMPTS_MAX * TOP_UP_VND
    assert stored.status is AccountStatus.OPEN
