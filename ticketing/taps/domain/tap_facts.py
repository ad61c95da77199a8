"""What one tap is, declared once: what the validator uploaded, where it stood, and what the
backend's verification found. The tap's event (`Tap.Recorded`) is these facts; the tap path
checks them (`tap.recorded_state`) before it stores them, and the journey follower reads them.

The fields are in the order the event has always stored them; a new one goes last, with a
default, and a new event version that upcasts older events to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True, kw_only=True)
class TapFacts:
    validator_id: int
    seq: int
    tapped_at: datetime  # the device's clock
    recorded_at: datetime  # the backend's clock
    # Where the validator stood when the tap was recorded (its registration).
    validator_kind: str
    network_id: int
    location: int
    medium: str
    device_decision: str
    device_reason: str
    verification: str
    refusal_reason: str | None
    # QR taps: the whole code text, and what it says when it parses.
    code_text: str | None = None
    card_id: UUID | None = None
    generated_at: int | None = None
    counter: int | None = None
    # Card taps: the session proof (spec/CARD.md), bytes as lowercase hex.
    serial: str | None = None
    key_level: int | None = None
    terminal_challenge: str | None = None
    card_challenge: str | None = None
    transaction_counter: int | None = None
    transcript: str | None = None
    card_mac: str | None = None
    # Numbers the validator's taps since it was last enrolled (`domain.validator`).
    epoch: int = 0
    # The fare feed's stop a bus validator said it was at (its GPS or the driver's console);
    # None when it said none, and the registration's stop stands (`stop_at`).
    stop_id: str | None = None


TAP_FACT_NAMES = tuple(field.name for field in fields(TapFacts))


def tap_facts(state: Mapping[str, Any]) -> TapFacts:
    """The facts of a tap's event state (which also holds the library's own fields)."""
    return TapFacts(**{name: state[name] for name in TAP_FACT_NAMES if name in state})


def facts_by_name(facts: TapFacts) -> dict[str, Any]:
    """The facts by name, in their declared order (the order the event stores them)."""
    return {name: getattr(facts, name) for name in TAP_FACT_NAMES}
