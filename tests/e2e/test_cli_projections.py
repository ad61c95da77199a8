"""`tapledger projections rebuild` rebuilds every read model, not only the ledger's."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tapledger.bootstrap import bootstrap
from tapledger.cli import app
from tests.builders.settings import ExplicitSettings
from ticketing.accounts.domain.commands import TopUp


def test_rebuild_covers_every_follower_and_keeps_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAPLEDGER_DATA_DIR", str(tmp_path))
    container = bootstrap(ExplicitSettings(data_dir=tmp_path))
    account = container.ledger.open_account(rider_category=0)
    container.ledger.execute(TopUp(account.id, 20_000, "cli-1"))
    container.catch_up()
    before = container.read_model.dump()
    container.close()

    result = CliRunner().invoke(app, ["projections", "rebuild"])

    assert result.exit_code == 0, result.output
    for name in ("ledger", "cards", "tap_sequences", "journeys"):
        assert f"{name}: rebuilt" in result.output
    after = bootstrap(ExplicitSettings(data_dir=tmp_path))
    try:
        assert after.read_model.dump() == before
    finally:
        after.close()
