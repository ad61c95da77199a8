"""Conditional GETs for what validators poll: an ETag per answer, and 304 when it has not changed.

The ETag is a hash of the answer's JSON, not a version number: an issuer key that reaches its
`valid_until` leaves the published set without changing the ring's version, and a deny-list page
depends on the `since` it was asked for. Hashing what is sent is right in every such case.
"""

from __future__ import annotations

import hashlib
from typing import TypeVar

from fastapi import Request, Response, status
from pydantic import BaseModel

# Enough of SHA-256 that two different answers never share a tag in practice.
ETAG_HEX_CHARS = 32
# A device holds its copy and must ask again before using it: the answer is for this token only.
CACHE_CONTROL = "private, no-cache"
# An If-None-Match header lists a few tags at most; more is not a cache, it is an attack.
IF_NONE_MATCH_TAGS_MAX = 16

M = TypeVar("M", bound=BaseModel)


def etag_of(body: BaseModel) -> str:
    digest = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    return f'"{digest[:ETAG_HEX_CHARS]}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether the client's `If-None-Match` names `etag` (weak comparison, RFC 9110 13.1.2)."""
    if not if_none_match:
        return False
    tags = [tag.strip() for tag in if_none_match.split(",")[:IF_NONE_MATCH_TAGS_MAX]]
    return any(tag == "*" or tag.removeprefix("W/") == etag for tag in tags)


def conditional(request: Request, response: Response, body: M) -> M | Response:
    """`body` with its ETag, or an empty 304 when the client already holds this very answer."""
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    response.headers.update(headers)
    return body
