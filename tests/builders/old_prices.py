"""A journeys' store made to look as releases before `Journey.Priced` version 2 wrote it:
each `Priced` event's state without the legs' fares, the feed version or a class version."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

import psycopg

from ticketing.journeys.domain.journey import Journey

STRIPPED = ("leg_fares", "feed_version", "class_version")


def as_version_1(
    conn: psycopg.Connection[tuple[object, ...]], journey_ids: Collection[UUID] | None = None
) -> int:
    """Rewrites the `Priced` events of `journey_ids` (of every journey when None) as version 1
    events; the number of events rewritten."""
    done = conn.execute(
        "UPDATE journeys_events SET state = convert_to(("
        "convert_from(state, 'UTF8')::jsonb - %s::text[])::text, 'UTF8') "
        "WHERE topic = %s AND (%s::uuid[] IS NULL OR originator_id = ANY(%s::uuid[]))",
        (
            list(STRIPPED),
            Journey.Priced.TOPIC,
            None if journey_ids is None else list(journey_ids),
            None if journey_ids is None else list(journey_ids),
        ),
    )
    return done.rowcount
