"""The OpenAPI document, made whole: every `$ref` resolves inside it.

Routes that parse their body themselves (the tap path) declare it with pydantic's JSON schema,
whose nested models live under a local `$defs` and are referenced as `#/$defs/...`. Inside an
OpenAPI document such a reference points at the document's root, where there is no `$defs`, so
code generators and schemathesis fail on it. This step moves every `$defs` into
`components/schemas` and rewrites the references, and adds the problem+json schema the error
responses refer to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from ticketing.shared.domain.invariants import require
from ticketing.shared.problem_responses import PROBLEM_SCHEMA_NAME, ProblemPublic

LOCAL_DEFS_PREFIX = "#/$defs/"
COMPONENTS_PREFIX = "#/components/schemas/"


def install_openapi(app: FastAPI) -> None:
    """Replaces `app.openapi` by one whose document has no dangling reference."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = whole_document(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def whole_document(document: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    _hoist(document, schemas)
    schemas.setdefault(
        PROBLEM_SCHEMA_NAME,
        ProblemPublic.model_json_schema(ref_template=COMPONENTS_PREFIX + "{model}"),
    )
    return document


def _hoist(node: Any, schemas: dict[str, Any]) -> None:
    """Moves each `$defs` below `node` into `schemas` and points its references there."""
    if isinstance(node, list):
        for item in node:
            _hoist(item, schemas)
        return
    if not isinstance(node, dict):
        return
    for name, definition in node.pop("$defs", {}).items():
        _hoist(definition, schemas)
        known = schemas.setdefault(name, definition)
        # Two models of one name with different schemas would make one reference lie.
        require(known == definition, f"two different schemas are both named {name}")
    node.update(_moved(node, "$ref"))
    # A discriminated union's `mapping` names its members by reference too.
    mapping = node.get("mapping")
    if isinstance(mapping, dict):
        mapping.update(_moved(mapping, *mapping))
    for value in node.values():
        _hoist(value, schemas)


def _moved(node: dict[str, Any], *keys: str) -> dict[str, str]:
    """The references among `node[key]` that point into a local `$defs`, pointed at components."""
    return {
        key: COMPONENTS_PREFIX + value.removeprefix(LOCAL_DEFS_PREFIX)
        for key in keys
        if isinstance(value := node.get(key), str) and value.startswith(LOCAL_DEFS_PREFIX)
    }
