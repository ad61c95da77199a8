"""An `eventsourcing` application that tells interested parties when it has committed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import Recording, Transcoder

from ticketing.shared.adapters.orjson_transcoder import OrjsonTranscoder

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

    def construct_transcoder(self) -> Transcoder:
        """The library's JSON, written by orjson (`OrjsonTranscoder`)."""
        transcoder = OrjsonTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's `save`, but an aggregate's events are collected without the two
        protocol checks the library makes of every object it is given (on Python 3.11 they
        cost a tenth of a batch of parking actions)."""
        collected = CollectedEvents()
        collected.collect_events(*objs, **kwargs)
        recordings = self._record(collected)
        self._take_snapshots(collected)
        self._notify(recordings)
        return recordings

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        for hook in self.after_save:
            hook()
        if self.after_events:
            events = [recording.domain_event for recording in recordings]
            for events_hook in self.after_events:
                events_hook(events)


class CollectedEvents(ProcessingEvent[UUID]):
    """What one commit writes: an aggregate's pending events are taken as an aggregate's; the
    library's checks decide for anything else (a bare event, None)."""

    def collect_events(self, *objs: Any, **kwargs: Any) -> None:
        for obj in objs:
            if isinstance(obj, BaseAggregate):
                self.events.extend(obj.collect_events())
                self.aggregates[obj.id] = obj
            else:
                super().collect_events(obj)
        self.saved_kwargs.update(kwargs)
