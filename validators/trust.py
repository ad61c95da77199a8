"""What the device trusts when it decides offline, kept in the state directory between runs.

Issuer keys, the deny list and the validator's config, as last synced. The file is replaced
atomically (write, fsync, rename), so a restart with no network decides with the last good copy,
never with half of one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from ticketing.tl1.keyset import IssuerKeySet

TRUST_FILE = "trust.json"
# Deny-list entries kept on the device: every blocked or retired card whose certificate or
# card is still usable. A city of a few million riders blocks far fewer within 72 hours.
DENY_ENTRIES_MAX = 500_000
TRUST_FILE_MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Trust:
    keys: dict[str, Any] | None = None  # the published key set, as received
    keys_etag: str | None = None
    config: dict[str, Any] | None = None  # GET /v1/validators/{id}/config, as received
    config_etag: str | None = None
    deny_version: int = 0
    # Card id (virtual cards) or hex serial (smart cards) -> unix s the entry ends.
    denied_cards: Mapping[str, int] = field(default_factory=dict)
    denied_serials: Mapping[str, int] = field(default_factory=dict)
    synced_at: int | None = None

    def key_set(self) -> IssuerKeySet:
        if self.keys is None:
            return IssuerKeySet({})
        return IssuerKeySet.from_bytes(
            {int(key["key_id"]): str(key["public_key"]) for key in self.keys["keys"]},
            revoked=[int(key_id) for key_id in self.keys["revoked"]],
            version=int(self.keys["version"]),
        )

    def with_deny_page(self, page: Mapping[str, Any], *, now: int) -> Trust:
        """The trust with one deny-list page added and the entries that ended dropped."""
        cards = {k: v for k, v in self.denied_cards.items() if v > now}
        serials = {k: v for k, v in self.denied_serials.items() if v > now}
        for entry in page["entries"]:
            until = int(datetime.fromisoformat(entry["until"]).timestamp())
            cards[str(UUID(entry["card_id"]))] = until
            if entry.get("serial"):
                serials[str(entry["serial"]).lower()] = until
        if len(cards) + len(serials) > DENY_ENTRIES_MAX:
            raise DenyListTooLarge(len(cards) + len(serials))
        return replace(
            self,
            deny_version=int(page["version"]),
            denied_cards=cards,
            denied_serials=serials,
        )


class DeniedNow:
    """A deny list as a `Container`, consulting the clock for entries that ended."""

    def __init__(self, entries: Mapping[str, int], now: Any) -> None:
        self._entries = entries
        self._now = now

    def __contains__(self, item: object) -> bool:
        key = str(item).lower() if isinstance(item, UUID | str) else None
        until = self._entries.get(key) if key is not None else None
        return until is not None and until > int(self._now())


class TrustStore:
    """The trust file in the device's state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / TRUST_FILE

    def load(self) -> Trust:
        """The last saved trust; an empty one when nothing was ever synced."""
        if not self.path.exists():
            return Trust()
        if self.path.stat().st_size > TRUST_FILE_MAX_BYTES:
            raise TrustFileInvalid(f"{self.path} is larger than {TRUST_FILE_MAX_BYTES} bytes")
        try:
            raw = json.loads(self.path.read_text())
            return Trust(**raw)
        except (ValueError, TypeError) as error:
            raise TrustFileInvalid(f"{self.path}: {error}") from None

    def save(self, trust: Trust) -> None:
        data = {
            "keys": trust.keys,
            "keys_etag": trust.keys_etag,
            "config": trust.config,
            "config_etag": trust.config_etag,
            "deny_version": trust.deny_version,
            "denied_cards": dict(trust.denied_cards),
            "denied_serials": dict(trust.denied_serials),
            "synced_at": trust.synced_at,
        }
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("w") as file:
            json.dump(data, file, separators=(",", ":"))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)


class DenyListTooLarge(Exception):
    code = "deny_list_too_large"

    def __init__(self, entries: int) -> None:
        super().__init__(f"the deny list has {entries:,} live entries, over {DENY_ENTRIES_MAX:,}")


class TrustFileInvalid(Exception):
    code = "trust_file_invalid"
