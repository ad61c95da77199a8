"""Ids derived from names, so that doing the same thing twice names the same object.

`url_uuid5(name)` is `uuid5(NAMESPACE_URL, name)`, byte for byte: every id derived from a name
in the URL namespace goes through it, so there is one way to name an aggregate. The standard
library's `uuid5` imports `sha1` and converts the namespace on every call; the tap path derives
two ids per tap (the tap's and the use it claims), and this one gives the same ids in less time.
"""

from __future__ import annotations

from functools import lru_cache
from hashlib import sha1
from uuid import NAMESPACE_URL, UUID

_URL_NAMESPACE = NAMESPACE_URL.bytes
UUID_BYTES = 16
UUID5_VERSION = 5
# Names remembered with their ids (about 4 MiB): a batch of parking actions names each
# session, plate and hold several times (planning, writing, settling), and a hit costs a
# twentieth of deriving the id again.
NAMED_IDS_REMEMBERED = 16_384


@lru_cache(maxsize=NAMED_IDS_REMEMBERED)
def url_uuid5(name: str) -> UUID:
    digest = sha1(_URL_NAMESPACE + name.encode(), usedforsecurity=False).digest()
    return UUID(bytes=digest[:UUID_BYTES], version=UUID5_VERSION)
