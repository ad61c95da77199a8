"""The demo's own clock: the composition root reads it, and the story moves it forward."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
# A Monday morning in Hanoi, before the first metro.
DEMO_START = datetime(2026, 11, 23, 6, 30, tzinfo=HANOI)


@dataclass
class SimClock:
    """The demo's own time, moved forward step by step."""

    now: datetime = DEMO_START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def advance_to(self, hour: int, minute: int = 0) -> None:
        """Moves on to the next time it is `hour:minute` in Hanoi (later today, or tomorrow);
        the clock never goes back, so every step of the story stays after the one before."""
        local = self.now.astimezone(HANOI)
        target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if target <= local:
            target += timedelta(days=1)
        self.now = target

    def label(self) -> str:
        """The time as a scene's heading shows it, in Hanoi."""
        return f"[bold]{self.now.astimezone(HANOI):%H:%M}[/bold]"
