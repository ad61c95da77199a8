"""The taps themselves, built before any clock starts: TL1 codes signed on every core, card
session proofs from `loadtests/harness/card_proofs.py`, and the validator's record around each."""

from __future__ import annotations

import math
import os
import random
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from loadtests.harness.card_proofs import card_session_proofs, sam_master_keys
from loadtests.harness.plan import FORGED_SHARE, QR_SHARE_BUS, QR_SHARE_METRO
from loadtests.harness.seeding import Device, World
from ticketing.tl1.device import sign_code

Tap = dict[str, Any]
# Phones handed to each signing process at a time.
SIGN_CHUNK_PHONES = 8
# The same draws of forged codes and of QR or card in every run.
TAPS_SEED = 7


def _sign(job: tuple[int, bytes, int, list[int]]) -> list[str]:
    scalar, certificate, generated_at, counters = job
    key = ec.derive_private_key(scalar, ec.SECP256R1())
    return [
        sign_code(
            certificate=certificate,
            device_private_key=key,
            generated_at=generated_at,
            counter=counter,
        )
        for counter in counters
    ]


def sign_codes(world: World, count: int, generated_at: int) -> list[str]:
    """`count` distinct codes, spread over the phones, signed on every core."""
    per_phone = math.ceil(count / len(world.phones))
    jobs = [
        (scalar, certificate, generated_at, list(range(per_phone)))
        for scalar, certificate in world.phones
    ]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        by_phone = list(pool.map(_sign, jobs, chunksize=SIGN_CHUNK_PHONES))
    # Interleave the phones, so any slice of the pool holds many riders.
    codes = [by_phone[p][i] for i in range(per_phone) for p in range(len(by_phone))]
    return codes[:count]


def seal_sam_keys(env: dict[str, str]) -> None:
    """The SAM key file must exist before the server starts: draw the keys and seal them."""
    sam_master_keys(env)


def card_proofs(world: World, per_card: int, at: int, env: dict[str, str]) -> list[Tap]:
    by_card = card_session_proofs(sam_master_keys(env), world.cards, per_card, at)
    serials = list(by_card)
    return [
        {"serial": serial, "proof": by_card[serial][i]}
        for i in range(per_card)
        for serial in serials
    ]


def forge(code: str) -> str:
    """The same code with one character of its signature changed."""
    last = code[-2]
    return code[:-2] + ("0" if last != "0" else "1") + code[-1]


class TapMaker:
    """Turns codes and proofs into the taps a validator uploads, with device sequences."""

    def __init__(self, codes: list[str], proofs: list[Tap], tapped_at: int) -> None:
        self.codes = iter(codes)
        self.proofs = iter(proofs)
        self.tapped_at = tapped_at
        self.seqs: Counter[int] = Counter()
        self.rng = random.Random(TAPS_SEED)
        self.forged = 0

    def qr(self, validator_id: int) -> Tap:
        self.seqs[validator_id] += 1
        code = next(self.codes)
        tap: Tap = {
            "medium": "qr",
            "seq": self.seqs[validator_id],
            "tapped_at": self.tapped_at,
            "device_decision": "accepted",
            "device_reason": "accepted",
            "code": code,
        }
        if self.rng.random() < FORGED_SHARE:
            self.forged += 1
            tap |= {"code": forge(code), "device_decision": "refused", "device_reason": "bad_sig"}
        return tap

    def card(self, validator_id: int) -> Tap:
        self.seqs[validator_id] += 1
        proof = next(self.proofs)
        return {
            "medium": "card",
            "seq": self.seqs[validator_id],
            "tapped_at": self.tapped_at,
            "device_decision": "accepted",
            "device_reason": "charged",
            **proof,
        }

    def mixed(self, device: Device) -> Tap:
        share = QR_SHARE_BUS if device.kind == "bus" else QR_SHARE_METRO
        return (
            self.qr(device.validator_id)
            if self.rng.random() < share
            else self.card(device.validator_id)
        )
