"""The product as `tapledger.bootstrap` assembles it, for the unit tests: local mode on a SQLite
file under the test's own directory, the hot state in memory, the SAM holding the vectors' keys,
and no follower running unless the test runs it (`container.card_follower.catch_up()`).

Built through the one composition root, a test sees the wiring production has (the card news on
the invalidation channel, the deny list from the card views) instead of a copy of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from hardware.sam import SoftwareSam
from tapledger.bootstrap import Container, bootstrap
from tapledger.http.hotstate_memory import MemoryHotState
from tests.builders.settings import ExplicitSettings
from tests.doubles import Clock, MillisClock
from tests.tap_media import MASTER_KEYS


@contextmanager
def local_product(
    data_dir: Path, *, clock: Callable[[], datetime] | None = None, **settings: Any
) -> Iterator[Container]:
    """The container on `data_dir`, closed when the block ends; `settings` override the
    defaults of local mode."""
    container = bootstrap(
        ExplicitSettings(
            environment="local", data_dir=data_dir, follow_in_process=False, **settings
        ),
        clock=clock if clock is not None else Clock(),
        hot_state=MemoryHotState(now_ms=MillisClock()),
        sam=SoftwareSam(MASTER_KEYS),
    )
    try:
        yield container
    finally:
        container.close()
