"""Writers racing another process on the same SQLite file: no doubles, the store's own
optimistic check refuses the saves that lost."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.account import AccountStatus
from ticketing.accounts.domain.commands import TopUp
from ticketing.accounts.domain.errors import LedgerBusy
from ticketing.cards.adapters.key_vault import KeyVault
from ticketing.cards.application.card_issuer import CardIssuer
from ticketing.shared.domain.errors import Contended
from ticketing.shared.optimistic import SAVE_ATTEMPTS_MAX

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
TOP_UP_VND = 1_000


def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s.db")}


def test_a_writer_beaten_on_every_attempt_by_another_process_is_answered_busy(
    tmp_path: Path,
) -> None:
    env = sqlite_env(tmp_path)
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


class SealerThatLetsARivalStartFirst(KeyVault):
    """Seals the first key only after another process has created the issuer key ring."""

    def __init__(self, kek: bytes, rival: CardIssuer) -> None:
        super().__init__(kek)
        self.rival: CardIssuer | None = rival

    def seal(self, private_key: Ed25519PrivateKey, *, key_id: int) -> str:
        if self.rival is not None:
            self.rival.ensure_issuer_key()
            self.rival = None
        return super().seal(private_key, key_id=key_id)


def test_two_processes_ensuring_the_issuer_key_at_once_start_the_ring_with_one_key(
    tmp_path: Path,
) -> None:
    env, kek = sqlite_env(tmp_path), os.urandom(32)

    def issuer(sealer: KeyVault) -> CardIssuer:
        return CardIssuer(env, sealer=sealer, account_of=Ledger().get_account, clock=lambda: T0)

    rival = issuer(KeyVault(kek))
    late = issuer(SealerThatLetsARivalStartFirst(kek, rival))
    # The late one found no ring and made one, but the rival saved its ring first: the late
    # one's save is refused, and on reading again it signs with the rival's key.
    assert late.ensure_issuer_key() == 1
    assert list(late.published_keys().keys) == list(rival.published_keys().keys) == [1]
