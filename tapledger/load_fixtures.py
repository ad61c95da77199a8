"""Card-tap fixtures for the load tests: a sealed SAM key file and many valid session proofs.

    TAPLEDGER_KEY_ENCRYPTION_KEY=<base64> python -m tapledger.load_fixtures \
        --cards cards.json --proofs-per-card N --key-file sam.sealed --out proofs.json

`loadtests` speaks HTTP and may not import `hardware` or `validators` (the import contract), so
`loadtests/run_taps.py` runs this module as a program. It draws fresh TLC1 master keys, writes
them sealed with the key-encryption key (the server's `TAPLEDGER_SAM_KEY_FILE`; an existing
file is unsealed and its keys used instead), and for every
card in `cards.json` (`[{"serial": hex, "account_id": uuid}]`):

* personalises an emulated card and charges one bus fare through the real terminal flow
  (`CardValidator` → `Terminal` → `EmulatedCard`), which gives a real session proof and a real
  transcript;
* derives `N` further proofs for the same card, one per transaction counter after that one, each
  with fresh challenges and the card MAC computed with the card's session key over the session's
  transcript, as the card would. The backend's re-verification checks exactly this MAC, so every
  proof is valid and every (serial, counter) is used once.

Running the emulator for each of the `N` proofs would cost milliseconds per proof; deriving them
costs three AES-CMACs.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections.abc import Sequence
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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=Path, required=True)
    parser.add_argument("--proofs-per-card", type=int, required=True)
    parser.add_argument("--key-file", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--at", type=int, required=True, help="the first ride's unix seconds")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    kek_b64 = os.environ.get(KEK_ENV, "")
    kek = base64.b64decode(kek_b64, validate=True)
    if args.key_file.exists():
        master_keys = parse_key_file(unseal_key_file(args.key_file.read_bytes(), kek=kek))
    else:
        master_keys = {level: os.urandom(crypto.KEY_BYTES) for level in KeyLevel}
        plain = json.dumps({str(int(level)): key.hex() for level, key in master_keys.items()})
        args.key_file.write_bytes(seal_key_file(plain.encode(), kek=kek))
        args.key_file.chmod(0o600)
    cards = json.loads(args.cards.read_text())
    out: dict[str, list[dict[str, object]]] = {}
    for entry in cards:
        serial = bytes.fromhex(entry["serial"])
        first = first_proof(master_keys, serial, UUID(entry["account_id"]), args.at)
        out[serial.hex()] = [
            proof_json(first),
            *derived_proofs(master_keys, first, args.proofs_per_card - 1),
        ]
    args.out.write_text(json.dumps(out))
    print(f"{sum(len(v) for v in out.values())} proofs for {len(out)} cards", file=sys.stderr)


if __name__ == "__main__":
    main()
