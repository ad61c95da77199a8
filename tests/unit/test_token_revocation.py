"""Revoking API tokens: refused at once though recently remembered, a validator's new token
revokes its older ones, and a principal read while a revocation arrives is not remembered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine

from tapledger.auth import TokenConfigured, TokenNotFound, TokenStore
from tests.doubles import SecondsClock
from ticketing.cards.application.invalidation import (
    Invalidation,
    LocalChannel,
    MessagesMayBeLost,
    TokensRevoked,
)
from ticketing.shared.access import Role

DEVICE = 7


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    built = create_engine(f"sqlite:///{tmp_path / 'tokens.db'}")
    yield built
    built.dispose()


def store(engine: Engine, channel: LocalChannel | None = None) -> TokenStore:
    tokens = TokenStore(engine, invalidations=channel, monotonic=SecondsClock(100.0))
    if channel is not None:
        channel.subscribe(tokens.invalidate)
    tokens.create_tables()
    return tokens


def test_a_revoked_token_is_refused_at_once_though_it_was_just_remembered(engine: Engine) -> None:
    tokens = store(engine)
    issued = tokens.issue(Role.OPERATOR, label="desk")
    assert tokens.authenticate(issued.token) == issued.principal
    assert tokens.recent(issued.token) == issued.principal  # remembered: no query next time
    assert tokens.revoke(issued.principal.token_id) is True
    assert tokens.recent(issued.token) is None
    assert tokens.authenticate(issued.token) is None
    assert tokens.revoke(issued.principal.token_id) is False  # again: nothing changes


def test_another_process_forgets_a_token_revoked_elsewhere(engine: Engine) -> None:
    here, there = LocalChannel(), LocalChannel()
    revoking, serving = store(engine, here), store(engine, there)
    issued = revoking.issue(Role.OPERATOR, label="desk")
    assert serving.authenticate(issued.token) is not None
    heard: list[Invalidation] = []
    here.subscribe(heard.append)
    revoking.revoke(issued.principal.token_id)
    assert heard == [TokensRevoked((issued.principal.token_id,))]
    assert serving.recent(issued.token) is not None  # the news has not reached it yet
    there.deliver(heard[0])  # as PostgreSQL delivers it to the other process
    assert serving.recent(issued.token) is None
    assert serving.authenticate(issued.token) is None


def test_issuing_a_validator_token_revokes_the_devices_earlier_tokens(engine: Engine) -> None:
    tokens = store(engine, LocalChannel())
    first = tokens.issue_device_token(DEVICE, label="gate")
    other_device = tokens.issue_device_token(DEVICE + 1, label="other gate")
    assert tokens.authenticate(first) is not None
    second = tokens.issue_device_token(DEVICE, label="gate, re-enrolled")
    assert tokens.recent(first) is None
    assert tokens.authenticate(first) is None
    principal = tokens.authenticate(second)
    assert principal is not None
    assert principal.device_id == DEVICE
    assert tokens.authenticate(other_device) is not None  # another device's token is untouched
    listed = {info.label: info for info in tokens.tokens()}
    assert listed["gate"].revoked_at is not None
    assert listed["gate, re-enrolled"].revoked_at is None


def test_a_principal_read_while_a_revocation_arrives_is_not_remembered(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = store(engine)
    issued = tokens.issue(Role.OPERATOR, label="desk")
    real_connect = engine.connect

    def connect_then_hear_news() -> Connection:
        # The row is read before the revocation commits; its news arrives during the read.
        tokens.invalidate(TokensRevoked(("someone else",)))
        return real_connect()

    with monkeypatch.context() as patched:
        patched.setattr(engine, "connect", connect_then_hear_news)
        assert tokens.authenticate(issued.token) is not None
    assert tokens.recent(issued.token) is None


def test_news_that_may_have_been_lost_forgets_every_remembered_principal(engine: Engine) -> None:
    tokens = store(engine)
    issued = tokens.issue(Role.ADMIN, label="admin")
    tokens.authenticate(issued.token)
    tokens.invalidate(MessagesMayBeLost())
    assert tokens.recent(issued.token) is None
    assert tokens.authenticate(issued.token) is not None  # still valid: read again


def test_revoking_refuses_unknown_ids_and_the_configured_admin_token(engine: Engine) -> None:
    tokens = store(engine)
    configured = tokens.ensure("tlk_configured-admin-token-of-the-settings", Role.ADMIN, label="a")
    with pytest.raises(TokenNotFound):
        tokens.revoke("0123456789abcdef")
    with pytest.raises(TokenConfigured):
        tokens.revoke(configured.token_id)


def test_the_token_list_carries_no_secret(engine: Engine) -> None:
    tokens = store(engine)
    issued = tokens.issue(Role.OPERATOR, label="desk")
    listed = tokens.tokens()
    assert [info.token_id for info in listed] == [issued.principal.token_id]
    assert issued.token not in repr(listed)


def test_revoking_a_devices_tokens_tells_every_process_and_leaves_them_known_as_its(
    engine: Engine,
) -> None:
    here, there = LocalChannel(), LocalChannel()
    revoking, serving = store(engine, here), store(engine, there)
    token = revoking.issue_device_token(DEVICE, label="gate")
    other_device = revoking.issue_device_token(DEVICE + 1, label="other gate")
    assert serving.authenticate(token) is not None
    assert revoking.revoked_device(token) is None  # still valid
    heard: list[Invalidation] = []
    here.subscribe(heard.append)
    assert revoking.revoke_device_tokens(DEVICE) == 1
    assert revoking.revoke_device_tokens(DEVICE) == 0  # again: nothing left to revoke
    there.deliver(heard[0])  # as PostgreSQL delivers it to the other process
    assert serving.recent(token) is None
    assert serving.authenticate(token) is None
    revoked = serving.revoked_device(token)
    assert revoked is not None
    assert revoked.device_id == DEVICE
    assert serving.authenticate(other_device) is not None
    assert serving.revoked_device("tlk_made-up") is None
