"""Syncing what the device trusts: issuer keys, deny-list deltas and its own config.

One `sync` asks for each with what the device already holds (an ETag, the deny-list version), so
an unchanged answer costs a 304 or an empty page. The new trust is saved only when every part
arrived: a sync cut short leaves the last good copy in place, and the next one starts from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from validators.backend import Backend
from validators.trust import Trust, TrustStore

# How often a running device syncs its trust and reports its health. A blocked card comes
# sooner, by the deny list's long poll (`validators.deny_watch`); this bounds it should that fail.
SYNC_INTERVAL_S_DEFAULT = 60
SYNC_INTERVAL_S_MIN = 5
SYNC_INTERVAL_S_MAX = 3600
# Deny-list pages read in one sync; a device far behind catches up over several syncs.
DENY_PAGES_PER_SYNC_MAX = 50


class Syncer:
    def __init__(
        self,
        backend: Backend,
        store: TrustStore,
        *,
        validator_id: int,
        clock: Callable[[], float],
    ) -> None:
        self._backend = backend
        self._store = store
        self._validator_id = validator_id
        self._clock = clock

    def sync(self, trust: Trust) -> Trust:
        """Fetches what changed since `trust`, saves the result and returns it.

        Raises the backend's errors; nothing is saved then."""
        now = int(self._clock())
        keys = self._backend.issuer_keys(trust.keys_etag)
        if keys is not None:
            trust = replace(trust, keys=keys.body, keys_etag=keys.etag)
        config = self._backend.config(self._validator_id, trust.config_etag)
        if config is not None:
            trust = replace(trust, config=config.body, config_etag=config.etag)
        for _ in range(DENY_PAGES_PER_SYNC_MAX):
            page = self._backend.deny_list(trust.deny_version)
            trust = trust.with_deny_page(page, now=now)
            if not page.get("more"):
                break
        trust = replace(trust, synced_at=now)
        self._store.save(trust)
        return trust
