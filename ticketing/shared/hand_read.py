"""For the few hot routes that read their request themselves instead of through FastAPI's
dependency solving: the query validated in one step by a pydantic model, with the errors and
messages FastAPI would give, and the OpenAPI entries FastAPI would have written for it."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

JSON_MEDIA_TYPE = "application/json"
# What `CurrentPrincipal` documents on the routes that take it (`HTTPBearer`'s scheme name).
BEARER_SECURITY: list[dict[str, list[str]]] = [{"HTTPBearer": []}]

Q = TypeVar("Q", bound=BaseModel)


def read_query(request: Request, model: type[Q]) -> Q:
    """The query string as `model`, or the 422 FastAPI answers to a bad query parameter: the
    same messages, each located under `query` as FastAPI locates them. As in FastAPI, a repeated
    parameter counts by its last value and parameters the model does not name are ignored."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as error:
        errors = error.errors(include_url=False)
        for item in errors:
            item["loc"] = ("query", *item["loc"])
        raise RequestValidationError(errors) from None


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI `parameters` of a query read as `model`: one per field, as FastAPI writes
    them for `Query(...)` parameters."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": field}
        for name, field in schema["properties"].items()
    ]
