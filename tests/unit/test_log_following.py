"""Reading the log in sections up to its head, and the one loop every follower runs."""

from __future__ import annotations

import logging
import threading
from uuid import UUID

import pytest

from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.account import TransportAccount
from ticketing.accounts.domain.commands import TopUp
from ticketing.shared.following import catch_up, follow, next_section, sections

OPENED = TransportAccount.Opened.TOPIC
FOLLOW_TIMEOUT_S = 10.0


def ledger_with_accounts(count: int) -> tuple[Ledger, list[UUID]]:
    """A ledger whose log alternates an opening with the two notifications of a top-up."""
    ledger = Ledger()
    account_ids = []
    for index in range(count):
        account_id = ledger.open_account(rider_category=0).id
        ledger.execute(TopUp(account_id, 1_000, f"seed-{index}"))
        account_ids.append(account_id)
    return ledger, account_ids


def test_sections_read_up_to_the_head_and_a_short_one_reaches_it() -> None:
    ledger, _ = ledger_with_accounts(3)  # notifications 1..9
    read = list(sections(ledger, 0, limit=4))
    assert [[n.id for n in s.notifications] for s in read] == [[1, 2, 3, 4], [5, 6, 7, 8], [9]]
    assert [s.end for s in read] == [4, 8, 9]


def test_a_section_of_one_topic_skips_the_others_and_may_reach_the_head() -> None:
    ledger, account_ids = ledger_with_accounts(3)
    section = next_section(ledger, 0, limit=10, topics=[OPENED])
    assert section is not None
    assert [n.originator_id for n in section.notifications] == account_ids
    # Shorter than asked: nothing of the topic lies after its last opening, up to the head.
    assert section.end == 9
    full = next_section(ledger, 0, limit=2, topics=[OPENED])
    assert full is not None
    assert (len(full.notifications), full.end) == (2, full.notifications[-1].id)


def test_nothing_after_the_head_is_no_section() -> None:
    ledger, _ = ledger_with_accounts(1)
    assert next_section(ledger, 3, limit=10) is None
    assert list(sections(ledger, 3, limit=10)) == []


def test_a_section_after_which_the_log_grew_stops_at_the_head_first_read() -> None:
    ledger, _ = ledger_with_accounts(1)
    reader = sections(ledger, 0, limit=2)
    first = next(reader)
    ledger.open_account(rider_category=0)  # notification 4, after the head read
    assert [s.end for s in [first, *reader]] == [2, 3]


def test_catch_up_pulls_until_a_pull_applies_nothing() -> None:
    pulls = [3, 5, 0, 7]
    assert catch_up(lambda: pulls.pop(0)) == 8
    assert pulls == [7]


def test_a_follower_stops_between_two_sections_of_a_backlog_when_told() -> None:
    stop, wake = threading.Event(), threading.Event()
    calls: list[int] = []

    def pull() -> int:  # a backlog that would never end
        calls.append(1)
        if len(calls) == 3:
            stop.set()
        return 1

    thread = threading.Thread(
        target=follow,
        args=(pull,),
        kwargs={"stop": stop, "wake": wake, "poll_s": 0.01, "name": "f"},
        daemon=True,  # were it never to stop, the test run must still end
    )
    thread.start()
    thread.join(FOLLOW_TIMEOUT_S)
    assert not thread.is_alive()
    assert len(calls) == 3


def test_a_follower_outlives_a_failed_pull_and_stops_when_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop, wake = threading.Event(), threading.Event()
    calls: list[int] = []

    def pull() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("the database restarted")
        if len(calls) == 3:
            stop.set()
        return 0

    with caplog.at_level(logging.ERROR):
        thread = threading.Thread(
            target=follow,
            args=(pull,),
            kwargs={"stop": stop, "wake": wake, "poll_s": 0.01, "name": "f"},
        )
        thread.start()
        thread.join(FOLLOW_TIMEOUT_S)
    assert not thread.is_alive()
    assert len(calls) == 3
    assert [r.getMessage() for r in caplog.records] == ["f failed; retrying"]
