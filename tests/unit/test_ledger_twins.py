"""Two ledgers on one store, as two API workers: a command whose twin (the same command, sent to
the other worker) commits while it reads is answered as a repeat, never a broken invariant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.builders.settings import ExplicitSettings
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import PlaceHold, TopUp

HOLD_VND = 50_000
HOLD_TTL_S = 3_600


def test_a_hold_whose_twin_commits_while_it_reads_is_a_repeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = ExplicitSettings(environment="local", data_dir=tmp_path).event_store_env()
    ledger, other = Ledger(env), Ledger(env)
    try:
        account_id = ledger.open_account(rider_category=0).id
        ledger.execute(TopUp(account_id, 500_000, "pay-1"))
        hold = PlaceHold(account_id, "parking:twin", HOLD_VND, HOLD_TTL_S, "parking")
        get = ledger.repository.get
        twin: list[Any] = []

        def get_after_the_twin(aggregate_id: Any, *args: Any, **kwargs: Any) -> Any:
            # The twin commits on the other worker just before this one's first read that
            # comes after the transfer's.
            if aggregate_id == account_id and not twin:
                twin.append(other.execute(hold))
            return get(aggregate_id, *args, **kwargs)

        monkeypatch.setattr(ledger.repository, "get", get_after_the_twin)
        receipt = ledger.execute(hold)

        assert (twin[0].replayed, receipt.replayed) == (False, True)
        assert ledger.get_account(account_id).pending_vnd == HOLD_VND
    finally:
        other.close()
        ledger.close()
