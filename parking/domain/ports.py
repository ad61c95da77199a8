"""What parking needs from outside its own store, as ports the product fills in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ScannedCode:
    """A TL1 code an attendant scanned, accepted as a tap would be: whose it is."""

    card_id: UUID
    counter: int
    account_id: UUID


class CodeReader(Protocol):
    def read(self, text: str, at: datetime) -> ScannedCode:
        """The payer of a scanned code, or `CodeRefused` with the validator's reason."""
        ...
