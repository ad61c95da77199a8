"""An `eventsourcing` application that tells interested parties when it has committed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Recording

# Followers read the log in sections of up to this many notifications.
LOG_SECTION_MAX = 500


class ObservedApplication(Application[UUID]):
    log_section_size = LOG_SECTION_MAX

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        # Called after every commit, e.g. to wake an in-process follower.
        self.after_save: list[Callable[[], None]] = []
        # Called after every commit with the events committed, e.g. to tell other processes
        # that a card was denied (`ticketing.cards.application.invalidation`).
        self.after_events: list[Callable[[Sequence[object]], None]] = []

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        for hook in self.after_save:
            hook()
        if self.after_events:
            events = [recording.domain_event for recording in recordings]
            for events_hook in self.after_events:
                events_hook(events)
