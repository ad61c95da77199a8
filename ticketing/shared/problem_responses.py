"""The error answers routes declare in OpenAPI: RFC 9457 problem+json bodies, one table.

The app renders every refusal as problem+json (`tapledger.http.problems`); declaring the same
statuses and body on every operation lets generated clients and schemathesis expect them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_SCHEMA_NAME = "Problem"
PROBLEM_SCHEMA_REF = f"#/components/schemas/{PROBLEM_SCHEMA_NAME}"

_DESCRIPTIONS: dict[int, str] = {
    400: "the body cannot be read as JSON text (not UTF-8)",
    401: "no bearer token, or one the server does not know",
    403: "the token's role may not do this",
    404: "what the path names does not exist",
    409: "refused in the resource's current state",
    413: "the body or the batch is larger than allowed",
    422: "the request does not match the schema, or the ledger refuses its content",
    429: "too many requests from this token; retry after Retry-After",
    503: "a store is busy or unavailable; retry",
}
# What every route of the API may answer, whatever it does: its body unreadable, its caller
# unknown or not allowed, its input refused, its rate limit reached, a store busy. 404 and 409
# are declared for every route as well: nearly every route names a resource that may not exist
# or be in another state, and a client handles them the same way everywhere.
API_ERROR_STATUSES = (400, 401, 403, 404, 409, 422, 429, 503)


class ProblemPublic(BaseModel):
    """An error answer (RFC 9457); `code` is stable, clients switch on it."""

    model_config = ConfigDict(extra="allow", title=PROBLEM_SCHEMA_NAME)

    type: str = Field(description="a URI naming the problem type")
    title: str = Field(description="the HTTP status phrase")
    status: int = Field(description="the HTTP status")
    code: str = Field(description="stable: part of the API contract")
    detail: str = Field(description="for people; may change")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """An OpenAPI `responses=` table declaring a problem+json body for each status."""
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, "refused"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
        }
        for status in statuses
    }


API_ERROR_RESPONSES = problem_responses(*API_ERROR_STATUSES)
