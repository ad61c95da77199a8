"""A closed clearing day behind the HTTP app: the parking world's day of journeys and parking
(tests/builders/clearing_day.py), its clock after midnight in Hanoi, and scoped tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from clearing.domain.business_day import day_end
from tests.builders.clearing_day import a_day
from tests.builders.journeys import register_validators
from tests.builders.parking import MORNING, ParkingWorld, parking_world
from tests.e2e.riders import ADMIN

DAY = MORNING.date()
METRO, BUS = "hanoi-metro", "transerco"


@contextmanager
def closed_day_world(data_dir: Path) -> Iterator[ParkingWorld]:
    """The parking world after its day (not yet run), the clock a minute past midnight."""
    with parking_world(data_dir) as world:
        register_validators(world.container.taps)
        a_day(world)
        world.clock.now = day_end(DAY) + timedelta(minutes=1)
        yield world


def operator_token(client: httpx.Client | TestClient, operator_id: str) -> dict[str, str]:
    """The headers of a new operator token scoped to `operator_id`."""
    issued = client.post(
        "/v1/tokens",
        json={"role": "operator", "operator_id": operator_id, "label": f"{operator_id} finance"},
        headers=ADMIN,
    )
    assert issued.status_code == httpx.codes.CREATED, issued.text
    return {"Authorization": f"Bearer {issued.json()['token']}"}
