"""The app (on SQLite in local mode, or one a test built) served by uvicorn in a thread of the
test process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI

from tapledger.bootstrap import bootstrap
from tapledger.http.app import create_app
from tapledger.local_server import ServerDidNotStart, ServerDidNotStop, served_in_thread
from tests.builders.settings import ExplicitSettings


@contextmanager
def served_locally(data_dir: Path, *, name: str) -> Iterator[str]:
    """Serves the app until the block ends; yields its base URL."""
    settings = ExplicitSettings(
        data_dir=data_dir,
        follow_in_process=True,
        # Explicit, so that TAPLEDGER_* variables of the shell cannot point the test elsewhere.
        environment="local",
        database_url=None,
        redis_url=None,
        admin_token=None,
    )
    with served_app(create_app(bootstrap(settings)), name=name) as base_url:
        yield base_url


@contextmanager
def served_app(app: FastAPI, *, name: str) -> Iterator[str]:
    """Serves `app` (its lifespan run by uvicorn) until the block ends; yields its base URL."""
    try:
        with served_in_thread(app, name=name) as base_url:
            yield base_url
    except (ServerDidNotStart, ServerDidNotStop) as error:
        pytest.fail(str(error), pytrace=False)
