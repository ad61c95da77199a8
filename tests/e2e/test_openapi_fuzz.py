"""Schemathesis over every operation of the app, in process: no 5xx, no undeclared status, no
answer that breaks the declared schema, for inputs generated from the OpenAPI document itself."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tapledger.bootstrap import Container, bootstrap
from tapledger.http.app import create_app
from tests.builders.settings import ExplicitSettings
from tests.e2e.riders import ADMIN
from ticketing.cards.application.deny_list_watch import DENY_WAIT_S_MAX

# Small, so the module stays within a couple of minutes on two busy cores; CI runs it on every
# push, and the seeds differ, so coverage grows over runs rather than in one.
EXAMPLES_PER_OPERATION_MAX = 8
# A deny-list long poll with nothing to wait for answers after its wait: kept short here.
LONG_POLL_WAIT_S_MAX = 1
# Every request comes from one token; the fuzzing must not meet the rate limit.
RATE_LIMIT_REQUESTS = 1_000_000
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _app_over_a_fresh_store() -> tuple[FastAPI, Container, Path]:
    data_dir = Path(tempfile.mkdtemp(prefix="tapledger-fuzz-"))
    settings_ = ExplicitSettings(
        data_dir=data_dir,
        follow_in_process=False,
        rate_limit_requests=RATE_LIMIT_REQUESTS,
    )
    container = bootstrap(settings_)
    return create_app(container, own_container=False), container, data_dir


# Built when the module is collected, not in a fixture: schemathesis's fixture-based loader
# (`schemathesis.pytest.from_fixture`) reads a private attribute pytest 9 no longer has.
APP, CONTAINER, DATA_DIR = _app_over_a_fresh_store()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _store_removed_afterwards() -> Iterator[None]:
    yield
    CONTAINER.close()
    shutil.rmtree(DATA_DIR, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION_MAX,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=False,
)
def test_every_operation_answers_as_its_schema_declares(case: Any) -> None:
    wait = str((case.query or {}).get("wait_s", ""))
    if case.path == "/v1/deny-list" and wait.isdigit() and int(wait) <= DENY_WAIT_S_MAX:
        # A long poll is a slow answer by design: waited out briefly, its answer is the same.
        case.query["wait_s"] = str(min(int(wait), LONG_POLL_WAIT_S_MAX))
    case.call_and_validate(headers=ADMIN, checks=CHECKS)
