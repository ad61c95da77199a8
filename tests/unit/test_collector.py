"""Long-running processes tune the cycle collector once start-up is done."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tapledger.collector import COLLECTOR_THRESHOLDS, tune_collector
from tapledger.http import app as http_app

PYTHON_DEFAULT_THRESHOLDS = (700, 10, 10)


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_tuning_collects_less_often_and_never_rescans_start_up_objects() -> None:
    tune_collector()
    assert gc.get_threshold() == COLLECTOR_THRESHOLDS
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("restored_collector")
def test_an_api_worker_tunes_the_collector_once_its_app_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[str] = []

    def create_app(*_: object) -> object:
        built.append(f"app, collector thresholds {gc.get_threshold()}")
        return the_app

    the_app = object()
    gc.set_threshold(*PYTHON_DEFAULT_THRESHOLDS)
    monkeypatch.setattr(http_app, "bootstrap", lambda *_, **__: None)
    monkeypatch.setattr(http_app, "create_app", create_app)
    monkeypatch.setattr(http_app, "Settings", lambda: None)
    app: object = http_app.app_from_env()
    assert app is the_app
    # Tuned after the app was built, so that what it built is frozen.
    assert built == [f"app, collector thresholds {PYTHON_DEFAULT_THRESHOLDS}"]
    assert gc.get_threshold() == COLLECTOR_THRESHOLDS
