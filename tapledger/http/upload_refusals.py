"""Uploads with a revoked validator's token: refused before their body is read, like any bad
token, but recorded as that device's refused upload, with why (`validator_revoked` when staff
revoked the validator, `device_token_revoked` when only this token was replaced or revoked), and
answered with that reason instead of a bare `not_authenticated`.

Only the tap upload routes are recorded, and only for tokens that were a validator's: a made-up
token costs the same single lookup it always did, and its failures are limited per address.
"""

from __future__ import annotations

from tapledger.auth import TokenStore
from ticketing.taps.api import ERROR_STATUS
from ticketing.taps.application.validator_registry import ValidatorRegistry

UPLOAD_PATHS = frozenset({"/v1/taps/batch", "/v1/taps"})


class RevokedDeviceUploads:
    """`tapledger.http.authentication.RefusedUpload` over the token store and the validators."""

    def __init__(self, tokens: TokenStore, registry: ValidatorRegistry) -> None:
        self._tokens = tokens
        self._registry = registry

    def __call__(self, token: str, path: str) -> tuple[int, str, str] | None:
        if path not in UPLOAD_PATHS:
            return None
        principal = self._tokens.revoked_device(token)
        if principal is None or principal.device_id is None:
            return None
        error = self._registry.refuse_revoked_token(principal.device_id, principal.token_id)
        return ERROR_STATUS[type(error)], error.code, str(error)
