"""The validator's card reader: wait for a card, validate it offline, record it; the next card
once this one has left the field.

Where the validator stands and what a ride costs there come from its synced config
(`GET /v1/validators/{id}/config`): its network and location, its kind and direction, and the
card medium's `max_fare_vnd` as the fare the purse pays (flat on a bus route; at a metro entry the
most a ride from there costs, the card being unable to learn the exit offline; at a metro exit
the most a ride ending there costs, taken only from a card that shows no entry). Which passes on
a card cover a ride here comes from the same config's fare network and route, with the pass
products of the fare feed (`validators.card_passes`).

The decision is returned (and so shown) as soon as the tap is recorded, with the card still in
the field. A card held there afterwards is the same tap, however long it stays: the station
serves the next card only once pcscd has seen this one leave. Looking at it again would take it
for a new ride, and where its last event is another gate's (a re-tap after a tear, recovered
here) it would be charged a second entry.

One card's failure never takes the station down: the validator turns every card, SAM and reader
failure into a refusal with its reason, and anything else raised while validating (a bug) is
reported to `on_fault` and recorded as `validator_fault`, so the tap is kept and the next card
is served.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from hardware.reader import CardIOError, CardReader, ReaderError, ReaderIOError
from hardware.sam import Sam
from hardware.tlc1.records import EventKind
from hardware.tlc1.terminal import Terminal
from validators.card_passes import CardPass, PassRules
from validators.card_validation import CardValidator, Outcome, TapPoint, Validation
from validators.gate import Gate, GateDecision

# How long one wait for a card (or for the last one to leave) blocks before the loop checks
# whether to stop.
CARD_WAIT_S = 1.0


NO_PASSES: Mapping[int, CardPass] = MappingProxyType({})


def tap_point(
    config: dict[str, Any], passes: Mapping[int, CardPass] = NO_PASSES
) -> TapPoint | None:
    """The validator's tap point from its config; None when the feed prices no card ride here.

    `passes` are the pass products a card may hold (`card_passes(feed)`); those covering this
    validator's fare network are the ones it looks for on a card.
    """
    validator = config["validator"]
    fares = [m["max_fare_vnd"] for m in config["media"] if m["medium"] == "card"]
    if not fares or fares[0] is None:
        return None
    if validator["kind"] == "bus":
        kind = EventKind.BUS_BOARDING
    elif validator["direction"] == "exit":
        kind = EventKind.METRO_EXIT
    else:
        kind = EventKind.METRO_ENTRY
    return TapPoint(
        network_id=int(validator["network_id"]),
        location=int(validator["location"]),
        validator=int(validator["validator_id"]),
        kind=kind,
        fare_vnd=int(fares[0]),
        passes=PassRules.at(
            passes,
            fare_network_id=str(config.get("fare_network_id") or ""),
            route_id=str(validator.get("route_id") or ""),
        ),
    )


class CardStation:
    def __init__(
        self,
        reader: CardReader,
        sam: Sam,
        gate: Gate,
        *,
        clock: Callable[[], float],
        passes: Mapping[int, CardPass] = NO_PASSES,
        on_fault: Callable[[str, Exception], None] = lambda _what, _error: None,
    ) -> None:
        self._reader = reader
        self._sam = sam
        self._gate = gate
        self._clock = clock
        self._passes = passes
        self._on_fault = on_fault
        # The card of the last decision may still be in the field: no new tap until it left.
        self._card_in_field = False

    def tap_once(self, wait_s: float = CARD_WAIT_S) -> GateDecision | None:
        """Handles the next card presented within `wait_s`; None when none came, or when the
        card of the last decision has not left the field within `wait_s` (module docstring)."""
        if self._card_in_field:
            if not self._reader.wait_for_removal(wait_s):
                return None
            self._card_in_field = False
        if not self._reader.wait_for_card(wait_s):
            return None
        self._card_in_field = True
        try:
            validation = self._validate()
        except Exception as error:  # a bug must not stop the gate: see the module docstring
            self._on_fault("card", error)
            validation = Validation(Outcome.VALIDATOR_FAULT)
        return self._gate.present_card(validation)

    def _validate(self) -> Validation:
        config = self._gate.trust.config
        point = tap_point(config, self._passes) if config is not None else None
        if point is None:
            return Validation(Outcome.NO_FARE_HERE)
        try:
            self._reader.power_on()
        except CardIOError:
            return Validation(Outcome.CARD_LOST)
        except ReaderIOError:
            return Validation(Outcome.READER_FAILED)
        try:
            validator = CardValidator(
                Terminal(self._reader, self._sam),
                point,
                denied_serials=self._gate.denied_serials(),
                clock=lambda: int(self._clock()),
            )
            return validator.validate()
        finally:
            with contextlib.suppress(ReaderError):
                self._reader.power_off()
