"""A store written by an earlier release keeps loading after modules move: every event class
has a pinned topic, never its module path. `tests/data/store-main/` was written by the
release before the contexts moved into their own packages (see `tests/data/README.md`)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from uuid import UUID

from eventsourcing.utils import get_topic, resolve_topic

from tapledger.bootstrap import bootstrap
from tapledger.settings import Settings
from tests.vectors import DATA_DIR

STORE_DIR = DATA_DIR / "store-main"
STORE_FILE = "tapledger.db"
NOTIFICATIONS_READ_MAX = 500  # the log's section size; the store holds fewer events


def _topics_of_the_earlier_release() -> list[str]:
    return (STORE_DIR / "event-topics.txt").read_text().split()


def test_every_topic_an_earlier_release_knew_still_names_a_class_pinned_to_it() -> None:
    topics = _topics_of_the_earlier_release()
    assert len(topics) > 50
    for topic in topics:
        assert get_topic(resolve_topic(topic)) == topic


def test_a_store_written_by_an_earlier_release_replays_every_aggregate(tmp_path: Path) -> None:
    shutil.copy(STORE_DIR / STORE_FILE, tmp_path / STORE_FILE)
    with sqlite3.connect(tmp_path / STORE_FILE) as db:
        stored = {UUID(hex=row[0]) for row in db.execute("SELECT originator_id FROM stored_events")}
        topics = {row[0] for row in db.execute("SELECT DISTINCT topic FROM stored_events")}
    container = bootstrap(
        Settings(environment="local", data_dir=tmp_path, database_url=None, redis_url=None)
    )
    try:
        app = container.ledger  # the applications share the store's one table of events
        notifications = app.notification_log.select(start=1, limit=NOTIFICATIONS_READ_MAX)
        events = [app.mapper.to_domain_event(n) for n in notifications]
        assert len(events) < NOTIFICATIONS_READ_MAX
        replayed: dict[UUID, object] = {
            event.originator_id: app.repository.get(event.originator_id) for event in events
        }
        assert set(replayed) == stored
        assert {get_topic(type(event)) for event in events} == topics
    finally:
        container.close()


def test_the_read_models_of_an_earlier_release_agree_with_its_replayed_accounts(
    tmp_path: Path,
) -> None:
    shutil.copy(STORE_DIR / STORE_FILE, tmp_path / STORE_FILE)
    container = bootstrap(
        Settings(environment="local", data_dir=tmp_path, database_url=None, redis_url=None)
    )
    try:
        rows = container.read_model.list_balances(after=None, limit=50)
        assert rows
        for row in rows:
            account = container.ledger.get_account(row["account_id"])
            assert (row["posted_vnd"], row["pending_vnd"]) == (
                account.posted_vnd,
                account.pending_vnd,
            )
        kept = container.read_model.dump()
        container.follower.rebuild()
        assert container.read_model.dump() == kept
    finally:
        container.close()
