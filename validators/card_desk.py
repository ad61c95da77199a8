"""The ticket office's card desk: personalise a new card, and reload its purse.

A reload moves money from the account to the card exactly once: the backend holds the amount
before the card is touched, and settles from the purse the card shows afterwards. If the card
leaves the field mid-session, `purse()` read at the next tap tells whether it took the money.

A reload whose card leaves between CLOSE and the ratifying READ leaves the card unratified, as a
torn ride does, and CARD.md has every validator of the network let an unratified card with a
very recent ride through free. So a torn reload is not left for a validator to guess at: the
desk learns it (`Reloaded.ratified` is False) and asks for the card again, and `ratify()` clears
the flag before the rider walks to a gate.
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware.invariants import require
from hardware.reader import CardIOError
from hardware.tlc1.commands import CardCommandError
from hardware.tlc1.constants import KeyLevel, Sfi
from hardware.tlc1.records import CONTRACT_RECORD_MAX, Contract, Environment, Purse, is_blank
from hardware.tlc1.terminal import SessionProof, Terminal


@dataclass(frozen=True)
class Reloaded:
    purse_before_vnd: int
    purse_after_vnd: int
    proof: SessionProof
    # False when the card left before the ratifying READ: present it again and call `ratify()`.
    ratified: bool = True


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
        # The card has committed: losing this READ must not lose the proof.
        return Reloaded(before, after, proof, ratified=self._ratify())

    def add_contract(self, contract: Contract) -> tuple[int, SessionProof]:
        """Writes a pass into the first empty contract record, at the load level.

        Validators search the contracts file from record 1 up to the first empty record
        (`validators.card_validation`), so passes are kept packed from record 1.
        """
        require(not contract.is_empty, "an empty contract is no pass to add")
        self.terminal.select()
        session = self.terminal.open_session(KeyLevel.LOAD)
        for record in range(1, CONTRACT_RECORD_MAX + 1):
            if is_blank(session.read_record(Sfi.CONTRACTS, record)):
                session.update_record(Sfi.CONTRACTS, record, contract.encode())
                proof = session.close()
                self._ratify()
                return record, proof
        session.abort()
        raise ContractsFull()

    def ratify(self) -> int:
        """Ratifies a card whose reload was torn before its READ; returns the purse it holds."""
        self.terminal.select()
        return Purse.decode(self.terminal.ratify(read=(Sfi.PURSE, 1))).value_vnd

    def _ratify(self) -> bool:
        try:
            self.terminal.ratify(read=(Sfi.PURSE, 1))
        except (CardIOError, CardCommandError):
            return False
        return True


class ContractsFull(Exception):
    """Every contract record of the card holds a pass: one must be removed first."""

    code = "card_contracts_full"

    def __init__(self) -> None:
        super().__init__(f"the card already holds {CONTRACT_RECORD_MAX} contracts")
