"""The OpenAPI document is whole: every reference resolves, every operation declares its errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tapledger.bootstrap import bootstrap
from tapledger.http.app import create_app
from tests.builders.settings import ExplicitSettings
from ticketing.shared.problem_responses import PROBLEM_MEDIA_TYPE
from ticketing.taps.domain.tap import RefusalReason

DECLARED_ERRORS = {"401", "403", "404", "409", "422"}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir: Path = tmp_path_factory.mktemp("openapi")
    settings = ExplicitSettings(data_dir=data_dir, follow_in_process=False)
    with TestClient(create_app(bootstrap(settings))) as client:
        yield client.get("/openapi.json").json()


def references(node: Any) -> Iterator[str]:
    """Every `$ref`, and every reference a discriminator's `mapping` names."""
    if isinstance(node, list):
        for item in node:
            yield from references(item)
    elif isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        mapping = node.get("mapping")
        if isinstance(mapping, dict):
            yield from (value for value in mapping.values() if isinstance(value, str))
        for value in node.values():
            yield from references(value)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{ref} does not resolve"
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_every_reference_in_the_document_resolves(document: dict[str, Any]) -> None:
    refs = set(references(document))
    assert refs, "the document has references"
    for ref in sorted(refs):
        resolve(document, ref)


def test_the_tap_bodies_name_their_members_in_components(document: dict[str, Any]) -> None:
    for path in ("/v1/taps", "/v1/taps/batch"):
        body = document["paths"][path]["post"]["requestBody"]
        assert "$defs" not in str(body)
    assert {"QrTapUpload", "CardTapUpload", "CardProofUpload"} <= set(
        document["components"]["schemas"]
    )


def test_every_api_operation_declares_its_errors_as_problem_json(
    document: dict[str, Any],
) -> None:
    for name, operation in operations(document):
        if not name.split(" ")[1].startswith("/v1/"):
            continue
        responses = operation["responses"]
        assert set(responses) >= DECLARED_ERRORS, name
        for status in DECLARED_ERRORS:
            content = responses[status]["content"]
            assert set(content) == {PROBLEM_MEDIA_TYPE}, (name, status)
            assert resolve(document, content[PROBLEM_MEDIA_TYPE]["schema"]["$ref"])["required"]


def test_the_backends_tap_refusal_reasons_are_an_enum_of_every_reason_it_gives(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    reasons = schemas["RefusalReason"]
    assert reasons["type"] == "string"
    assert set(reasons["enum"]) == set(RefusalReason)
    for schema, field in (
        ("TapResultPublic", "reason"),
        ("TapDisagreementPublic", "refusal_reason"),
    ):
        choices = schemas[schema]["properties"][field]["anyOf"]
        assert {"$ref": "#/components/schemas/RefusalReason"} in choices, (schema, choices)
        assert {"type": "null"} in choices


def test_binary_fields_come_in_both_encodings_beside_each_other(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert {"certificate", "certificate_hex"} <= set(schemas["VirtualCardPublic"]["properties"])
    assert {"public_key", "public_key_b64"} <= set(schemas["IssuerKeyPublic"]["properties"])
