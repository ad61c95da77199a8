"""Card taps for the load tests: the SAM's master keys in a sealed key file, and many valid
session proofs for each smart card.

The keys are drawn once per run and written sealed with the key-encryption key, where the
server's `TAPLEDGER_SAM_KEY_FILE` points (an existing file is unsealed and its keys used). For
every card (`{"serial": hex, "account_id": uuid}`):

* an emulated card is personalised and charged one bus fare through the validators' own flow
  (`CardValidator` → `Terminal` → `EmulatedCard`), which gives a real session proof and a real
  transcript;
* `N - 1` further proofs follow for the same card, one per transaction counter after that one,
  each with fresh challenges and the card MAC computed with the card's session key over the
  session's transcript, as the card would. The backend's re-verification checks exactly this
  MAC, so every proof is valid and every (serial, counter) is used once.

Running the emulator for each proof would cost milliseconds; deriving one costs three AES-CMACs.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from uuid import UUID

from hardware.emulator.card import CardTorn, EmulatedCard
from hardware.fake_reader import CardInReader
from hardware.sam import SoftwareSam, parse_key_file, seal_key_file, unseal_key_file
from hardware.tlc1 import crypto
from hardware.tlc1.constants import KeyLevel
from hardware.tlc1.records import Environment, EventKind
from hardware.tlc1.terminal import SessionProof, Terminal
from validators.card_desk import CardDesk
from validators.card_validation import CardValidator, Outcome, TapPoint

NETWORK = 1
PURSE_VND = 500_000
FARE_VND = 8_000
ISSUED_ON = 1_700_000_000
CHALLENGE_BYTES = 8
KEK_ENV = "TAPLEDGER_KEY_ENCRYPTION_KEY"
SAM_KEY_FILE_ENV = "TAPLEDGER_SAM_KEY_FILE"


def _terminal(card: EmulatedCard, sam: SoftwareSam) -> Terminal:
    reader = CardInReader(card, "emulated", lost_card_errors=(CardTorn,))
    reader.power_on()
    return Terminal(reader, sam)


def first_proof(
    master_keys: dict[KeyLevel, bytes], serial: bytes, account_id: UUID, at: int
) -> SessionProof:
    """One real bus ride through the terminal flow on a freshly personalised emulated card."""
    sam = SoftwareSam(master_keys)
    card = EmulatedCard.from_master_keys(master_keys, serial)
    desk = CardDesk(_terminal(card, sam))
    desk.personalise(
        Environment(
            network_id=NETWORK, issued_on=ISSUED_ON, rider_category=0, account_id=account_id
        )
    )
    desk.reload(PURSE_VND)
    point = TapPoint(
        network_id=NETWORK, location=32, validator=1, kind=EventKind.BUS_BOARDING, fare_vnd=FARE_VND
    )
    validation = CardValidator(
        _terminal(card, sam), point, denied_serials=frozenset(), clock=lambda: at
    ).validate()
    if validation.outcome is not Outcome.CHARGED or validation.proof is None:
        raise SystemExit(f"the emulated card {serial.hex()} was not charged: {validation.outcome}")
    return validation.proof


def proof_json(proof: SessionProof) -> dict[str, object]:
    return dict(proof.to_wire())


def derived_proofs(
    master_keys: dict[KeyLevel, bytes], first: SessionProof, count: int
) -> list[dict[str, object]]:
    """`count` proofs after `first`, each a session the card could have run next."""
    card_key = crypto.card_key(
        master_keys[first.level], serial=first.serial, level=int(first.level)
    )
    proofs = []
    for counter in range(first.counter + 1, first.counter + 1 + count):
        terminal_challenge = os.urandom(CHALLENGE_BYTES)
        card_challenge = os.urandom(CHALLENGE_BYTES)
        session_key = crypto.session_key(
            card_key,
            terminal_challenge=terminal_challenge,
            card_challenge=card_challenge,
            counter=counter,
        )
        proof = replace(
            first,
            terminal_challenge=terminal_challenge,
            card_challenge=card_challenge,
            counter=counter,
            card_mac=crypto.card_mac(session_key, first.transcript),
        )
        proofs.append(proof_json(proof))
    return proofs


def sam_master_keys(env: Mapping[str, str]) -> dict[KeyLevel, bytes]:
    """The SAM's master keys from the key file the server's `env` names, drawn and written
    sealed with its key-encryption key if the file does not exist yet."""
    key_file = Path(env[SAM_KEY_FILE_ENV])
    kek = base64.b64decode(env[KEK_ENV], validate=True)
    if key_file.exists():
        return parse_key_file(unseal_key_file(key_file.read_bytes(), kek=kek))
    master_keys = {level: os.urandom(crypto.KEY_BYTES) for level in KeyLevel}
    plain = json.dumps({str(int(level)): key.hex() for level, key in master_keys.items()})
    key_file.write_bytes(seal_key_file(plain.encode(), kek=kek))
    key_file.chmod(0o600)
    return master_keys


def card_session_proofs(
    master_keys: dict[KeyLevel, bytes],
    cards: Sequence[Mapping[str, str]],
    per_card: int,
    at: int,
) -> dict[str, list[dict[str, object]]]:
    """`per_card` proofs for each card, by serial (hex): the first from a ride at `at`."""
    out: dict[str, list[dict[str, object]]] = {}
    for entry in cards:
        serial = bytes.fromhex(entry["serial"])
        first = first_proof(master_keys, serial, UUID(entry["account_id"]), at)
        out[serial.hex()] = [proof_json(first), *derived_proofs(master_keys, first, per_card - 1)]
    return out
