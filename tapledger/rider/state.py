"""What the rider's phone remembers between runs: its card, certificate, clock offset and counter.

`DeviceKeyStore` keeps it as JSON beside the device key; the private key is never part of it.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer

from ticketing.tl1.layout import U16_MAX

API_URL_MAX_CHARS = 2048
TOKEN_MAX_CHARS = 512


class WalletState(BaseModel):
    """What the phone remembers between runs; never the private key, which has its own file."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    api_url: Annotated[str, Field(max_length=API_URL_MAX_CHARS)] = ""
    token: Annotated[SecretStr, Field(max_length=TOKEN_MAX_CHARS)] = SecretStr("")
    account_id: UUID | None = None
    card_id: UUID | None = None
    certificate: str | None = None
    not_after: int | None = None
    # server time minus this phone's time when the certificate arrived, in whole seconds.
    clock_offset_s: int = 0
    # The counter of the next code; it only moves forward, so no two codes share one.
    counter: Annotated[int, Field(ge=0, le=U16_MAX)] = 0

    @field_serializer("token", when_used="json")
    def _token_in_file(self, token: SecretStr) -> str:
        # The file is the one place the token is written out (mode 0600); reprs stay masked.
        return token.get_secret_value()
