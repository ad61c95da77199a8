"""The demo's virtual-card scene: a phone registers, shows codes, a gate decides offline."""

from __future__ import annotations

import base64
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from rich.console import Console

from tapledger.bootstrap import Container
from ticketing.tl1.certificate_cache import CertificateCache
from ticketing.tl1.device import next_counter, sign_code
from ticketing.tl1.keyset import IssuerKeySet
from ticketing.tl1.qr_image import make_symbol
from ticketing.tl1.replay import ReplayWindow
from ticketing.tl1.verify import Verifier


def gate_for(container: Container) -> Verifier:
    """A metro gate's offline verifier, loaded as a gate would: key set and deny list."""
    published = container.cards.published_keys()
    keys = IssuerKeySet.from_bytes(
        {key_id: hex_key for key_id, (hex_key, _) in published.keys.items()},
        revoked=published.revoked,
        version=published.version,
    )
    container.card_follower.catch_up()
    now = container.cards.now()
    denied = {e["card_id"] for e in container.card_views.deny_list_since(0, now=now).entries}
    return Verifier(
        keys, denied, replay_window=ReplayWindow(), certificate_cache=CertificateCache()
    )


def virtual_card_scene(container: Container, account_id: UUID, console: Console) -> bool:
    """Returns whether every decision was the expected one."""
    phone_key = ec.generate_private_key(ec.SECP256R1())
    device_key = phone_key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    card = container.cards.issue_virtual_card(account_id, device_key=device_key)
    certificate = base64.b64decode(card.certificate_b64)
    console.print(
        f"  [green]ok[/green] Minh's phone registers: virtual card {str(card.id)[:8]}…, "
        f"certificate by issuer key {card.issuer_key_id}, valid 72 h"
    )
    counter = 0

    def show_code() -> str:
        nonlocal counter
        counter = next_counter(counter)
        now = int(container.cards.now().timestamp())
        return sign_code(
            certificate=certificate, device_private_key=phone_key, generated_at=now, counter=counter
        )

    gate = gate_for(container)
    now = int(container.cards.now().timestamp())
    code = show_code()
    symbol = make_symbol(code)
    console.print(
        f"  [green]ok[/green] the app shows a {len(code)}-character code "
        f"(QR version {symbol.version}, level {symbol.error}): {code[:24]}…"
    )
    decisions = [gate.verify(code, now).decision.value, gate.verify(code, now).decision.value]
    console.print(
        f"  gate at Cát Linh, offline: first scan [bold]{decisions[0]}[/bold]; "
        f"the same code again [bold]{decisions[1]}[/bold]"
    )
    container.cards.block_virtual_card(card.id, reason="phone reported stolen")
    gate = gate_for(container)
    blocked = gate.verify(show_code(), now).decision.value
    console.print(
        "  Minh reports the phone stolen; with the new deny list the gate says "
        f"[bold]{blocked}[/bold]"
    )
    return decisions == ["accepted", "code_replayed"] and blocked == "card_denied"
