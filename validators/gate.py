"""The gate's decision on one tap, made offline and written to the outbox before the gate opens.

QR: the TL1 `Verifier` (spec/QR.md) against the synced keys and deny list, with a replay window
refilled from the outbox at start, so a restart forgets no code accepted within the window.
Card: a `validators.card_validation.Validation` the card station made; here it is recorded.
A tap the outbox cannot keep (`OutboxFull`) is refused and the gate stays closed. On a bus, each
tap names the stop the bus says it is at (`validators.bus_stop`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ticketing.shared.domain.invariants import require
from ticketing.tl1.certificate_cache import CertificateCache
from ticketing.tl1.replay import ReplayWindow
from ticketing.tl1.verify import Verifier
from validators.bus_stop import StopSource, no_stop
from validators.card_validation import Validation
from validators.outbox import Outbox, OutboxFull
from validators.trust import DeniedNow, Trust

# What the backend keeps of a scanned text
# (ticketing.taps.application.ingestion.CODE_TEXT_MAX_CHARS); a longer line is no TL1 code,
# so its start is enough to record it refused as malformed.
QR_TEXT_MAX_CHARS = 400
ACCEPTED = "accepted"
REFUSED = "refused"


@dataclass(frozen=True)
class GateDecision:
    """What the rider is shown, and the seq the tap was recorded under (None: not recorded)."""

    medium: str
    accepted: bool
    reason: str
    seq: int | None
    charged_vnd: int = 0


class Gate:
    """Decides and records taps; QR taps come from one thread (the scanner's)."""

    def __init__(
        self,
        outbox: Outbox,
        trust: Trust,
        *,
        clock: Callable[[], float],
        stop: StopSource = no_stop,
    ) -> None:
        self._outbox = outbox
        self._clock = clock
        self._stop = stop
        window = ReplayWindow()
        now = int(clock())
        for key in outbox.seen_since(now - window.horizon_s):
            window.remember(key, now)
        self._verifier = Verifier(
            trust.key_set(),
            DeniedNow(trust.denied_cards, clock),
            replay_window=window,
            certificate_cache=CertificateCache(),
        )
        self.trust = trust

    def trust_now(self, trust: Trust) -> None:
        """Decides with a newly synced trust from the next tap on."""
        self._verifier.keys = trust.key_set()
        self._verifier.deny_list = DeniedNow(trust.denied_cards, self._clock)
        self.trust = trust

    def denied_serials(self) -> DeniedNow:
        return DeniedNow(self.trust.denied_serials, self._clock)

    def present_qr(self, text: str) -> GateDecision:
        text = text.strip()[:QR_TEXT_MAX_CHARS]
        require(bool(text), "a blank scanner line is no tap; the caller skips it")
        now = int(self._clock())
        verification = self._verifier.verify(text, now)
        code = verification.code
        seen = None
        if verification.accepted and code is not None:
            seen = (code.certificate.card_id, code.generated_at, code.counter)
        decision = ACCEPTED if verification.accepted else REFUSED
        reason = verification.decision.value
        try:
            seq = self._outbox.append(
                medium="qr",
                tapped_at=now,
                decision=decision,
                reason=reason,
                upload_fields={"code": text, **self._where()},
                seen=seen,
                forget_seen_before=now - self._verifier.replay_window.horizon_s,
            )
        except OutboxFull as error:
            return GateDecision("qr", False, error.code, None)
        return GateDecision("qr", verification.accepted, reason, seq)

    def _where(self) -> dict[str, str]:
        """The stop the bus says it is at, for the tap's upload; nothing when it says none."""
        stop = self._stop()
        return {} if stop is None else {"stop_id": stop}

    def present_card(self, validation: Validation) -> GateDecision:
        now = int(self._clock())
        fields: dict[str, Any] = {
            "serial": None if validation.serial is None else validation.serial.hex(),
            **self._where(),
        }
        proof = validation.proof
        if proof is not None:
            fields["proof"] = proof.to_wire()
        reason = validation.outcome.value
        try:
            seq = self._outbox.append(
                medium="card",
                tapped_at=now,
                decision=ACCEPTED if validation.accepted else REFUSED,
                reason=reason,
                upload_fields=fields,
            )
        except OutboxFull as error:
            # The card was already charged when it was; its own event log still proves it.
            return GateDecision("card", False, error.code, None)
        return GateDecision(
            "card", validation.accepted, reason, seq, charged_vnd=validation.charged_vnd
        )
