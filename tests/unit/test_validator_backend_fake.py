"""The validator backend contract on the fake the device's unit tests use."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import pytest

from tests.validator_backend_contract import BackendContract, BackendSite
from tests.validator_fakes import NOW, FakeBackend, Phone, phone

LOST_CARD = UUID("6d1f0c3e-2b7a-4c55-8e11-0f2a3b4c5d6e")
REFUSAL = "bad_device_signature"


@dataclass
class FakeSite:
    backend: FakeBackend = field(default_factory=FakeBackend)
    phone: Phone = field(default_factory=lambda: phone("lan"))

    @property
    def validator_id(self) -> int:
        return self.backend.validator_id

    def good_tap(self, seq: int) -> dict[str, Any]:
        return {
            "medium": "qr",
            "seq": seq,
            "tapped_at": NOW,
            "device_decision": "accepted",
            "device_reason": "accepted",
            "code": self.phone.code(NOW - 1),
        }

    def refused_tap(self, seq: int) -> dict[str, Any]:
        # The fake cannot tell a bad code from a good one: it is told which taps to refuse.
        self.backend.refused_reasons[seq] = REFUSAL
        return {**self.good_tap(seq), "code": "TL1:not-a-code"}

    def recorded_seqs(self) -> list[int]:
        return sorted(self.backend.recorded)

    def deny_a_card(self) -> str:
        self.backend.deny(LOST_CARD)
        return str(LOST_CARD)


class TestFakeBackend(BackendContract):
    @pytest.fixture
    def site(self) -> Iterator[BackendSite]:
        # A generator like the contract's, which lets an adapter close what it opened.
        yield FakeSite()  # noqa: PT022
