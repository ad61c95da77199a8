"""The ticket office's card desk: personalise a new card, and reload its purse.

A reload moves money from the account to the card exactly once: the backend holds the amount
before the card is touched, and settles from the purse the card shows afterwards. If the card
leaves the field mid-session, `purse()` read at the next tap tells whether it took the money.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from hardware.reader import CardIOError
from hardware.tlc1.commands import CardCommandError
from hardware.tlc1.constants import KeyLevel, Sfi
from hardware.tlc1.records import Environment, Purse
from hardware.tlc1.terminal import SessionProof, Terminal


@dataclass(frozen=True)
class Reloaded:
    purse_before_vnd: int
    purse_after_vnd: int
    proof: SessionProof


class CardDesk:
    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal

    def personalise(self, environment: Environment) -> SessionProof:
        """Writes the environment record (account link, category, network) at level 1."""
        self.terminal.select()
        session = self.terminal.open_session(KeyLevel.PERSONALISATION)
        session.update_record(Sfi.ENVIRONMENT, 1, environment.encode())
        proof = session.close()
        self.terminal.ratify(read=(Sfi.ENVIRONMENT, 1))
        return proof

    def purse(self) -> tuple[bytes, int]:
        """The card's serial and purse, read outside any session."""
        serial = self.terminal.select()
        return serial, Purse.decode(self.terminal.read_record(Sfi.PURSE, 1)).value_vnd

    def verified_purse(self) -> tuple[int, SessionProof]:
        """The purse as a card-signed fact: a load-level session that reads it and closes with
        no change, so the card's MAC proves the value and the counter is fresh. This is how a
        torn reload is settled: the purse shows whether the card took the money."""
        self.terminal.select()
        session = self.terminal.open_session(KeyLevel.LOAD, read=(Sfi.PURSE, 1))
        value = Purse.decode(session.record or b"").value_vnd
        proof = session.close()
        self._ratify()
        return value, proof

    def reload(self, amount_vnd: int) -> Reloaded:
        """INCREASE at the load level, in a session that also reads the purse it starts from."""
        self.terminal.select()
        session = self.terminal.open_session(KeyLevel.LOAD, read=(Sfi.PURSE, 1))
        before = Purse.decode(session.record or b"").value_vnd
        after = session.increase(amount_vnd)
        proof = session.close()
        self._ratify()  # the card has committed: losing this READ must not lose the proof
        return Reloaded(before, after, proof)

    def _ratify(self) -> None:
        with contextlib.suppress(CardIOError, CardCommandError):
            self.terminal.ratify(read=(Sfi.PURSE, 1))
