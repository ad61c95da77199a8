"""Fresh PostgreSQL databases for the integration and end-to-end tiers.

The `eventsourcing` PostgreSQL store names its tables after the application (`ledger_events`,
...), so two tests sharing one database would see each other's events. Every test that asks for
`postgres_database_url` gets a database of its own, created from the `postgres` maintenance
database and dropped afterwards, whatever connections the code under test left open.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from tapledger.settings import Settings
from tests.builders.settings import ExplicitSettings
from tests.doubles import Clock
from tests.services import postgres_url
from ticketing.accounts.adapters.ledger_follower import LedgerFollower
from ticketing.accounts.adapters.read_model import PAGE_SIZE_MAX, LedgerReadModel
from ticketing.accounts.adapters.read_model import holds as holds_table
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.account import TransportAccount
from ticketing.accounts.domain.commands import Debit, PlaceHold, PostHold, TopUp, VoidHold
from ticketing.accounts.domain.errors import InsufficientFunds
from ticketing.accounts.domain.transfer import HoldOutcome

MAINTENANCE_DATABASE = "postgres"
TEST_DATABASE_PREFIX = "tl_test_"
CONNECT_TIMEOUT_S = 5


def _with_database(server_url: str, database: str) -> str:
    """The server URL naming another database, as a plain libpq URL (no SQLAlchemy driver)."""
    url = make_url(server_url).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


class DatabaseFactory:
    """Creates uniquely named databases on one server and drops each one again."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.created: list[str] = []

    def create(self, name: str | None = None) -> str:
        """Creates an empty database and returns its URL (same host and user as the server's);
        named `name` (a test database's name) or a new name."""
        name = name or TEST_DATABASE_PREFIX + secrets.token_hex(8)
        assert name.startswith(TEST_DATABASE_PREFIX)
        with self._maintenance() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return _with_database(self.server_url, name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        assert name is not None
        assert name.startswith(TEST_DATABASE_PREFIX)
        with self._maintenance() as conn:
            # FORCE ends the sessions a failed test left open, so the drop never waits on them.
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(_with_database(self.server_url, name))

    def _maintenance(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            _with_database(self.server_url, MAINTENANCE_DATABASE),
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
        )


@pytest.fixture(scope="session")
def database_factory() -> Iterator[DatabaseFactory]:
    """One factory for the session; anything a test did not drop is dropped at the end."""
    factory = DatabaseFactory(postgres_url())
    yield factory
    factory.drop_all()


@pytest.fixture
def postgres_database_url(database_factory: DatabaseFactory) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database of this test's own."""
    url = database_factory.create()
    yield url
    database_factory.drop(url)


# Shared by the PostgreSQL and the embedded SQLite tests: one history, one set of checks.

T0 = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
HISTORY_TOP_UP_VND = 200_000
HISTORY_ROUNDS = 7
HOLD_VND = 15_000
HOLD_POSTED_VND = 9_000
HOLD_TTL_S = 3600
SHORT_HOLD_TTL_S = 60
# More than any account in these tests ever holds, so the debit is refused for want of funds.
REFUSED_DEBIT_VND = 1_500_000
# A statement page this long shows every line of a history in these tests.
STATEMENT_LINES_MAX = PAGE_SIZE_MAX
FOLLOWERS_JOIN_TIMEOUT_S = 120.0
FOLLOWER_IDLE_S = 0.005

STATEMENT_KINDS: dict[type[Any], str] = {
    TransportAccount.Opened: "opened",
    TransportAccount.ToppedUp: "top_up",
    TransportAccount.Debited: "debit",
    TransportAccount.HoldPlaced: "hold_placed",
    TransportAccount.HoldPosted: "hold_posted",
    TransportAccount.HoldVoided: "hold_voided",
    TransportAccount.HoldExpired: "hold_expired",
    TransportAccount.Blocked: "blocked",
    TransportAccount.Unblocked: "unblocked",
    TransportAccount.Closed: "closed",
}


def settings_for(data_dir: Path, database_url: str | None = None) -> Settings:
    """Local-mode settings on PostgreSQL (`database_url`) or on the SQLite file in `data_dir`."""
    return ExplicitSettings(environment="local", data_dir=data_dir, database_url=database_url)


def record_history(ledger: Ledger, clock: Clock, *, tag: str, accounts: int = 3) -> list[UUID]:
    """Gives each account a history holding every kind of account event, and returns their ids.

    Account 0 is blocked and unblocked; account 1 ends closed; the others end with one hold
    still pending. A refused debit in every round leaves no event behind.
    """
    account_ids: list[UUID] = []
    for index in range(accounts):
        account_id = ledger.open_account(rider_category=0, display_name=f"Rider {index}").id
        account_ids.append(account_id)
        ledger.execute(TopUp(account_id, HISTORY_TOP_UP_VND, f"{tag}-pay-{index}"))
        for round_ in range(HISTORY_ROUNDS):
            prefix = f"{tag}-a{index}-r{round_}"
            ledger.execute(Debit(account_id, f"{prefix}-fare", 1_000 + 100 * round_, "bus 09"))
            with pytest.raises(InsufficientFunds):
                ledger.execute(Debit(account_id, f"{prefix}-big", REFUSED_DEBIT_VND))
            hold_id = f"{prefix}-hold"
            if round_ % 3 == 0:
                ledger.execute(PlaceHold(account_id, hold_id, HOLD_VND, HOLD_TTL_S, "metro"))
                ledger.execute(PostHold(account_id, hold_id, HOLD_POSTED_VND))
            elif round_ % 3 == 1:
                ledger.execute(PlaceHold(account_id, hold_id, HOLD_VND, HOLD_TTL_S, "parking"))
                ledger.execute(VoidHold(account_id, hold_id))
            else:
                # Expired by the next command on the account, once the clock has passed it.
                ledger.execute(PlaceHold(account_id, hold_id, HOLD_VND, SHORT_HOLD_TTL_S))
                clock.advance(SHORT_HOLD_TTL_S + 1)
        if index == 0:
            ledger.block_account(account_id, reason="card reported lost")
            ledger.unblock_account(account_id)
        if index == 1:
            ledger.close_account(account_id)
        else:
            ledger.execute(PlaceHold(account_id, f"{tag}-a{index}-last", HOLD_VND, HOLD_TTL_S))
    return account_ids


def events_of(ledger: Ledger, account_id: UUID, kind: type[Any]) -> list[Any]:
    """The account's stored events of one kind, oldest first."""
    return [e for e in ledger.events.get(account_id) if isinstance(e, kind)]


def statement_kinds_of(ledger: Ledger, account_id: UUID) -> list[str]:
    """The statement line each stored account event should give, oldest first."""
    return [STATEMENT_KINDS[type(e)] for e in ledger.events.get(account_id)]


def assert_read_model_matches(
    ledger: Ledger, read_model: LedgerReadModel, account_ids: Sequence[UUID]
) -> int:
    """Balances, statements and holds of the read model equal the aggregates; returns the
    number of statement lines, which is the number of account events applied."""
    lines_total = 0
    for account_id in account_ids:
        account = ledger.get_account(account_id)
        balance = read_model.balance(account_id)
        assert balance is not None, f"no balance row for {account_id}"
        assert (
            balance["posted_vnd"],
            balance["pending_vnd"],
            balance["available_vnd"],
            balance["status"],
            balance["version"],
        ) == (
            account.posted_vnd,
            account.pending_vnd,
            account.available_vnd,
            account.status.value,
            account.version,
        )
        page = read_model.statement(account_id, before_seq=None, limit=STATEMENT_LINES_MAX)
        assert page.next_before_seq is None, "the history fits one page"
        # Newest first, gap-free, one line per stored event, in the events' order.
        assert [line["seq"] for line in page.lines] == list(range(account.version, 0, -1))
        kinds = [line["kind"] for line in reversed(page.lines)]
        assert kinds == statement_kinds_of(ledger, account_id)
        newest = page.lines[0]
        assert (newest["posted_after_vnd"], newest["pending_after_vnd"]) == (
            account.posted_vnd,
            account.pending_vnd,
        )
        assert sum(line["posted_delta_vnd"] for line in page.lines) == account.posted_vnd
        assert _projected_holds(read_model, account_id) == _aggregate_holds(ledger, account_id)
        lines_total += len(page.lines)
    return lines_total


def _projected_holds(read_model: LedgerReadModel, account_id: UUID) -> dict[str, tuple[Any, ...]]:
    query = select(holds_table).where(holds_table.c.account_id == account_id)
    with read_model.engine.connect() as conn:
        return {
            row.hold_id: (row.status, row.amount_vnd, row.posted_vnd) for row in conn.execute(query)
        }


def _aggregate_holds(ledger: Ledger, account_id: UUID) -> dict[str, tuple[Any, ...]]:
    """Every hold the account ever placed, as its transfer record says it ended."""
    result: dict[str, tuple[Any, ...]] = {}
    for e in ledger.events.get(account_id):
        if isinstance(e, TransportAccount.HoldPlaced):
            transfer = ledger.get_transfer(e.hold_id)
            assert transfer is not None
            assert transfer.outcome is not None
            posted_vnd = transfer.posted_vnd if transfer.outcome is HoldOutcome.POSTED else 0
            result[e.hold_id] = (transfer.outcome.value, e.amount_vnd, posted_vnd)
    pending = {k for k, v in result.items() if v[0] == HoldOutcome.PENDING.value}
    assert pending == set(ledger.get_account(account_id).holds)
    return result


def account_event_count(ledger: Ledger, account_ids: Sequence[UUID]) -> int:
    return sum(ledger.get_account(account_id).version for account_id in account_ids)


def follow_with_two_followers(
    ledger: Ledger, engines: Sequence[Engine], *, section_size: int, write: Callable[[], None]
) -> list[int]:
    """Runs one follower per engine in its own thread, all on the same tables, while `write`
    runs in this thread; then lets each catch up once more. Returns what each applied."""
    followers = [LedgerFollower(ledger, engine, section_size=section_size) for engine in engines]
    for follower in followers:
        follower.create_tables()
    writing_done = threading.Event()
    start = threading.Barrier(len(followers) + 1)
    applied = [0] * len(followers)
    failures: list[BaseException] = []

    def follow(index: int) -> None:
        try:
            start.wait(FOLLOWERS_JOIN_TIMEOUT_S)
            while not writing_done.is_set():
                applied[index] += followers[index].catch_up()
                time.sleep(FOLLOWER_IDLE_S)
            applied[index] += followers[index].catch_up()
        except BaseException as error:  # reported to the test thread below
            failures.append(error)

    threads = [
        threading.Thread(target=follow, args=(i,), name=f"follower-{i}", daemon=True)
        for i in range(len(followers))
    ]
    for thread in threads:
        thread.start()
    try:
        start.wait(FOLLOWERS_JOIN_TIMEOUT_S)
        write()
    finally:
        writing_done.set()
        for thread in threads:
            thread.join(FOLLOWERS_JOIN_TIMEOUT_S)
    assert not any(thread.is_alive() for thread in threads), "a follower did not finish"
    assert not failures, f"a follower failed: {failures[0]!r}"
    for follower in followers:
        assert follower.lag() == 0
    return applied
