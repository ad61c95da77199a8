"""The rider's phone as a library: a device key, a TL1 certificate for it, and fresh codes.

The phone holds one P-256 key that never leaves it (`keystore.DeviceKeyStore`), asks the backend
once to certify it (`Wallet.register`), renews the certificate before it runs out, and signs a new
code whenever one is shown (`Wallet.code`). Codes are made offline: only registering, renewing and
the balance need the network, through the small `port.RiderPort` (`api.RiderApi` speaks it over
HTTP).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tapledger.rider.errors import WalletError
from tapledger.rider.keystore import DeviceKeyStore
from tapledger.rider.port import (
    AccountReply,
    CardReply,
    RiderPort,
    StatementLineReply,
    certificate_bytes,
)
from ticketing.tl1.device import CertificateKeyMismatch, next_counter, sign_code
from ticketing.tl1.layout import DEVICE_KEY_BYTES, DEVICE_KEY_OFFSET

# A certificate lives 72 h; renewing with half a day left leaves a rider who opens the app once
# a day a working code even if the network is down at the moment of renewal.
RENEW_BEFORE_S = 12 * 3600
STATEMENT_LINES_MAX = 50
CARD_STATUS_ACTIVE = "active"
SERVER_TIME_TRUNCATION_S = 0.5


@dataclass(frozen=True)
class WalletStatus:
    account: AccountReply
    lines: list[StatementLineReply]


class Wallet:
    """The use cases of the rider's phone over a key store and the backend port."""

    def __init__(
        self, store: DeviceKeyStore, client: RiderPort, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.client = client
        self.clock = clock
        self.state = store.load_state()

    @property
    def registered(self) -> bool:
        """A certificate for this device's key is at hand (it may have expired)."""
        certificate = self.state.certificate
        if certificate is None:
            return False
        certified_key = certificate_bytes(certificate)[
            DEVICE_KEY_OFFSET : DEVICE_KEY_OFFSET + DEVICE_KEY_BYTES
        ]
        return certified_key == self.store.public_key_sec1()

    def register(self) -> bool:
        """Gets a certificate for this device's key; False when one was already at hand."""
        if self.registered:
            return False
        card_id = self.state.card_id
        if card_id is not None and self.state.certificate is None:
            # The card is known but its certificate was lost: fetch it rather than issue a new
            # card, which would retire this one.
            sent_at = self.clock()
            card = self.client.get_virtual_card(card_id)
            if card.status == CARD_STATUS_ACTIVE:
                self._keep(card, sent_at)
                if self.registered:
                    return True
        principal = self.client.me()
        if principal.account_id is None:
            raise WalletError("not_a_rider_token", "the token does not belong to a rider account")
        sent_at = self.clock()
        card = self.client.issue_virtual_card(principal.account_id, self.store.public_key_sec1())
        self._keep(card, sent_at)
        return True

    def seconds_left(self) -> int:
        """Seconds until the certificate expires, by the server's clock; negative once it has."""
        not_after = self.state.not_after
        if not_after is None or not self.registered:
            raise WalletError("not_registered", "run `tapledger rider register` first")
        return not_after - self.server_now()

    def renew_if_due(self, renew_before_s: int = RENEW_BEFORE_S) -> bool:
        """Renews the certificate when it has `renew_before_s` or less to live; True if renewed."""
        if self.seconds_left() > renew_before_s:
            return False
        card_id = self.state.card_id
        if card_id is None:
            raise WalletError("not_registered", "run `tapledger rider register` first")
        sent_at = self.clock()
        self._keep(self.client.renew_virtual_card(card_id), sent_at)
        return True

    def code(self) -> str:
        """A fresh `TL1:` text, signed now with the device key; needs no network."""
        certificate = self.state.certificate
        if certificate is None:
            raise WalletError("not_registered", "run `tapledger rider register` first")
        counter = self.state.counter
        # Saved before the code exists, so a crash cannot lead to a second code with this counter.
        self.state.counter = next_counter(counter)
        self.store.save_state(self.state)
        try:
            return sign_code(
                certificate=certificate_bytes(certificate),
                device_private_key=self.store.private_key(),
                generated_at=self.server_now(),
                counter=counter,
            )
        except CertificateKeyMismatch:
            raise WalletError(
                "certificate_for_another_key",
                "the certificate names another device key; run `tapledger rider register` again",
            ) from None

    def status(self, lines: int) -> WalletStatus:
        """The account's balances and its latest `lines` statement lines, newest first."""
        if not 1 <= lines <= STATEMENT_LINES_MAX:
            raise WalletError("bad_line_count", f"lines must be 1..{STATEMENT_LINES_MAX}")
        account_id = self.state.account_id
        if account_id is None:
            raise WalletError("not_registered", "run `tapledger rider register` first")
        return WalletStatus(
            self.client.account(account_id), self.client.statement(account_id, lines)
        )

    def forget_card(self) -> None:
        """Drops the card (for a token of another account); the key and counter stay."""
        self.state.account_id = None
        self.state.card_id = None
        self.state.certificate = None
        self.state.not_after = None
        self.store.save_state(self.state)

    def server_now(self) -> int:
        """This phone's clock corrected by the offset learned from the server, unix seconds."""
        return int(self.clock() + self.state.clock_offset_s)

    def _keep(self, card: CardReply, sent_at: float) -> None:
        # The server read its clock between our request and its reply; the midpoint halves the
        # error a slow network adds to the offset.
        local_at = (sent_at + self.clock()) / 2
        # `server_time` is cut to whole seconds, so the server's clock was on average half a
        # second past it; without this, a phone on the server's own clock would run a second slow
        # half of the time.
        server_at = card.server_time + SERVER_TIME_TRUNCATION_S
        self.state.account_id = card.account_id
        self.state.card_id = card.card_id
        self.state.certificate = card.certificate
        self.state.not_after = card.not_after
        self.state.clock_offset_s = round(server_at - local_at)
        self.store.save_state(self.state)
