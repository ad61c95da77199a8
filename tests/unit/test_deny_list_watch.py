"""The backend's long poll of the deny list: woken by news, by the recheck, or ended early."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from uuid import uuid4

from ticketing.cards.application.deny_list_watch import DenyListWatch
from ticketing.cards.application.invalidation import CardDenied, TokensRevoked

# Long enough that a test answered by news never reaches it; the time bound is never asserted.
LONG_WAIT_S = 30.0
NEVER_RECHECK_S = 3600.0


class Head:
    """The deny list's head as the views would read it, counting the reads."""

    def __init__(self, value: int = 0) -> None:
        self.value = value
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return self.value


def denied() -> CardDenied:
    at = datetime(2027, 1, 15, tzinfo=UTC)
    return CardDenied(uuid4(), None, at, at)


def test_a_wait_past_a_head_already_moved_answers_at_once() -> None:
    watch = DenyListWatch(Head(5), recheck_s=NEVER_RECHECK_S)
    assert asyncio.run(watch.wait_past(4, LONG_WAIT_S)) == 5


def test_news_of_a_denied_card_wakes_the_waiting_requests_from_another_thread() -> None:
    head = Head(3)
    watch = DenyListWatch(head, recheck_s=NEVER_RECHECK_S)

    async def scenario() -> list[int]:
        waiting = [asyncio.create_task(watch.wait_past(3, LONG_WAIT_S)) for _ in range(3)]
        while head.reads == 0:
            await asyncio.sleep(0)
        head.value = 4
        # The channel's listener thread delivers the news.
        threading.Thread(target=watch.on_invalidation, args=(denied(),)).start()
        return list(await asyncio.gather(*waiting))

    assert asyncio.run(scenario()) == [4, 4, 4]
    assert head.reads <= 2  # read for all the waiters together, not once each


def test_other_news_wakes_nobody_and_the_wait_ends_empty_at_its_limit() -> None:
    head = Head(3)
    watch = DenyListWatch(head, recheck_s=NEVER_RECHECK_S)

    async def scenario() -> int:
        waiting = asyncio.create_task(watch.wait_past(3, 0.2))
        await asyncio.sleep(0)
        watch.on_invalidation(TokensRevoked(("t",)))
        return await waiting

    assert asyncio.run(scenario()) == 3
    assert head.reads == 1


def test_an_entry_the_news_arrived_before_is_found_by_the_recheck() -> None:
    head = Head(3)
    watch = DenyListWatch(head, recheck_s=0.01)

    async def scenario() -> int:
        waiting = asyncio.create_task(watch.wait_past(3, LONG_WAIT_S))
        while head.reads < 2:
            await asyncio.sleep(0.005)
        head.value = 4  # the card follower wrote the entry; no news comes with it
        return await waiting

    assert asyncio.run(scenario()) == 4


def test_a_client_that_hung_up_ends_its_wait() -> None:
    watch = DenyListWatch(Head(3), recheck_s=0.01)

    async def gone() -> bool:
        return True

    assert asyncio.run(watch.wait_past(3, LONG_WAIT_S, gone=gone)) == 3
