"""An `eventsourcing` application that tells interested parties when it has committed."""

from __future__ import annotations

from collections.abc import Callable
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

    def _notify(self, recordings: list[Recording[UUID]]) -> None:  # noqa: ARG002
        for hook in self.after_save:
            hook()
