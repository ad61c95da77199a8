"""`tapledger projections run` tunes the cycle collector for a process that only follows."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tapledger.cli import FOLLOWER_GC_THRESHOLDS, tune_collector_for_followers


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_the_follower_process_collects_less_often_and_never_rescans_start_up_objects() -> None:
    tune_collector_for_followers()
    assert gc.get_threshold() == FOLLOWER_GC_THRESHOLDS
    assert gc.get_freeze_count() > 0
