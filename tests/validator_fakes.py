"""A fake backend for the validator device, and phones with certificates."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ticketing.tl1.device import sign_code
from ticketing.tl1.issuing import compress_p256, issue_certificate
from validators.backend import BackendRefused, BackendUnavailable, Fetched, TapAnswer

NOW = 1_800_000_000
KEY_ID = 7
ISSUER = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
CARDS = UUID("0b5e8f0e-3f0a-4a55-9d52-3c1d7d1f2e11")
CERTIFICATE_LIFETIME_S = 24 * 3600


@dataclass
class Phone:
    card_id: UUID
    key: ec.EllipticCurvePrivateKey
    certificate: bytes
    counter: int = 0

    def code(self, at: int) -> str:
        self.counter += 1
        return sign_code(
            certificate=self.certificate,
            device_private_key=self.key,
            generated_at=at,
            counter=self.counter,
        )


def phone(name: str) -> Phone:
    key = ec.derive_private_key(int.from_bytes(name.encode()), ec.SECP256R1())
    card_id = uuid5(CARDS, name)
    certificate = issue_certificate(
        ISSUER,
        issuer_key_id=KEY_ID,
        card_id=card_id,
        rider_category=0,
        flags=0,
        not_before=NOW - 3600,
        not_after=NOW - 3600 + CERTIFICATE_LIFETIME_S,
        device_key=compress_p256(key.public_key()),
    )
    return Phone(card_id, key, certificate)


def published_keys() -> dict[str, Any]:
    public = ISSUER.public_key().public_bytes_raw().hex()
    return {
        "version": 1,
        "keys": [{"key_id": KEY_ID, "public_key": public, "valid_until": None}],
        "revoked": [],
    }


def config_body(validator_id: int, epoch: int = 0) -> dict[str, Any]:
    return {
        "validator": {
            "epoch": epoch,
            "validator_id": validator_id,
            "kind": "metro_gate",
            "network_id": 1,
            "location": 32,
            "stop_id": "2A-01",
            "route_id": "2A",
            "direction": "entry",
            "registered_at": "2027-01-15T08:00:00Z",
        },
        "fare_network_id": "metro_2a",
        "media": [
            {"medium": "card", "fare_media_id": "transit_card", "max_fare_vnd": 8000},
            {"medium": "qr", "fare_media_id": "mobile_app", "max_fare_vnd": 8000},
        ],
    }


@dataclass
class FakeBackend:
    """The backend's contract in memory: a tap is recorded once per (validator, epoch, seq);
    another tap under a number already taken is kept for review and answered seq_conflict."""

    validator_id: int = 1
    epoch: int = 0  # the validator's current enrolment, as its config says
    recorded: dict[int, dict[str, Any]] = field(default_factory=dict)  # epoch 0's taps by seq
    by_epoch: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    conflicts: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (epoch, tap)
    uploads: list[list[int]] = field(default_factory=list)
    denied: list[dict[str, Any]] = field(default_factory=list)
    failures_to_come: int = 0
    lose_answers: int = 0  # record the batch, then fail as if the answer was lost
    refused_reasons: dict[int, str] = field(default_factory=dict)
    deny_list_down: bool = False
    health_reports: list[dict[str, Any]] = field(default_factory=list)
    health_down: bool = False
    server_time_ms: int = NOW * 1000  # what the backend's clock says when a report arrives
    deny_polls: list[tuple[int, int]] = field(default_factory=list)  # (since, wait_s)
    deny_changed: threading.Condition = field(default_factory=threading.Condition)
    polls_released: bool = False  # every long poll answers at once (a test ending)

    def tap_id(self, epoch: int, seq: int) -> str:
        """The id this backend gives the tap numbered `seq` in `epoch`."""
        return str(uuid5(CARDS, f"tap/{self.validator_id}/{epoch}/{seq}"))

    def deny(self, card_id: UUID, until: int = NOW + 3600) -> None:
        until_iso = datetime.fromtimestamp(until, UTC).isoformat()
        self.denied.append({"card_id": str(card_id), "serial": None, "reason": "lost"})
        self.denied[-1]["until"] = until_iso
        with self.deny_changed:
            self.deny_changed.notify_all()

    def release_polls(self) -> None:
        """Answers every waiting long poll now, and every later one at once."""
        with self.deny_changed:
            self.polls_released = True
            self.deny_changed.notify_all()

    def _fail_if_told(self) -> None:
        if self.failures_to_come:
            self.failures_to_come -= 1
            raise BackendUnavailable("the link is down")

    def issuer_keys(self, etag: str | None) -> Fetched | None:
        self._fail_if_told()
        return None if etag == '"keys-1"' else Fetched(published_keys(), '"keys-1"')

    def deny_list(self, since: int, *, wait_s: int = 0) -> dict[str, Any]:
        self._fail_if_told()
        if self.deny_list_down:
            raise BackendUnavailable("the deny list does not answer")
        self.deny_polls.append((since, wait_s))
        with self.deny_changed:
            # A long poll: held until a card is listed after `since`, or the wait ends.
            self.deny_changed.wait_for(
                lambda: len(self.denied) > since or self.polls_released, timeout=wait_s
            )
        return {"version": len(self.denied), "entries": self.denied[since:], "more": False}

    def report_health(self, validator_id: int, report: dict[str, Any]) -> int:
        assert validator_id == self.validator_id
        if self.health_down:
            raise BackendUnavailable("the health route does not answer")
        self.health_reports.append(dict(report))
        return self.server_time_ms

    def config(self, validator_id: int, etag_held: str | None) -> Fetched | None:
        self._fail_if_told()
        etag = f'"config-{self.epoch}"'
        return None if etag == etag_held else Fetched(config_body(validator_id, self.epoch), etag)

    def upload(
        self, validator_id: int, taps: Sequence[dict[str, Any]], *, epoch: int = 0
    ) -> list[TapAnswer]:
        assert validator_id == self.validator_id
        if not 0 <= epoch <= self.epoch:
            raise BackendRefused(409, "epoch_not_enrolled", f"never enrolled in epoch {epoch}")
        self._fail_if_told()
        self.uploads.append([tap["seq"] for tap in taps])
        recorded = self.recorded if epoch == 0 else self.by_epoch.setdefault(epoch, {})
        answers = []
        for tap in taps:
            seq = tap["seq"]
            if seq in recorded:
                if recorded[seq] == tap:
                    answers.append(TapAnswer(seq, "duplicate", None, self.tap_id(epoch, seq)))
                else:
                    if (epoch, tap) not in self.conflicts:
                        self.conflicts.append((epoch, dict(tap)))
                    conflict_id = str(uuid5(CARDS, f"conflict/{epoch}/{seq}"))
                    answers.append(TapAnswer(seq, "seq_conflict", None, conflict_id))
                continue
            recorded[seq] = dict(tap)
            reason = self.refused_reasons.get(seq)
            status = "refused" if reason else "accepted"
            answers.append(TapAnswer(seq, status, reason, self.tap_id(epoch, seq)))
        if self.lose_answers:
            self.lose_answers -= 1
            raise BackendUnavailable("the answer was lost on the way back")
        return answers
