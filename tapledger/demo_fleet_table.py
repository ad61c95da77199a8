"""The fleet scene's last word: the devices' health as `GET /v1/validators` lists it, as a table."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

# Each device reports at start and on each sync: every one has reported within this.
FLEET_REPORT_TIMEOUT_S = 20.0
# How often the list is read while waiting: the fleet view is a projection with no push.
FLEET_POLL_S = 0.2


def fleet_when_reported(client: httpx.Client, validator_ids: set[int]) -> list[dict[str, Any]]:
    """The fleet's rows once each of `validator_ids` has reported an empty outbox (the list as
    it is when the bound runs out: the table then shows who never reported, or what waits).

    Every tap of the scene is uploaded before this is asked, so each device's next report says
    so; a report made before (the gate that was offline may have synced before it uploaded)
    would show taps the backend already holds. A device reports on its sync, every 5 s here."""
    deadline = time.monotonic() + FLEET_REPORT_TIMEOUT_S
    while True:
        answer = client.get("/v1/validators")
        answer.raise_for_status()
        rows: list[dict[str, Any]] = answer.json()["items"]
        reported = {
            row["validator_id"]
            for row in rows
            if row["health"] is not None and row["health"]["outbox_depth"] == 0
        }
        if reported >= validator_ids or time.monotonic() > deadline:
            return rows
        time.sleep(FLEET_POLL_S)


def print_fleet(console: Console, rows: list[dict[str, Any]], places: Mapping[int, str]) -> bool:
    """Prints the table; True when it lists each of `places` with a health report."""
    table = Table(title="The fleet's health (GET /v1/validators)", title_justify="left")
    # "reported": the last report's age; "deny v.": the deny-list version it decides with.
    for column in ("id", "kind", "place", "reported", "outbox", "deny v.", "flags"):
        table.add_column(column, justify="right" if column in {"outbox", "deny v."} else "left")
    now = datetime.now(UTC)
    for row in rows:
        health = row["health"] or {}
        received = health.get("received_at")
        age = (
            "never"
            if received is None
            else f"{(now - datetime.fromisoformat(received)).total_seconds():.1f} s ago"
        )
        place = places.get(row["validator_id"], str(row["location"]))
        table.add_row(
            str(row["validator_id"]),
            row["kind"],
            place,
            age,
            str(health.get("outbox_depth", "—")),
            str(health.get("deny_version", "—")),
            ", ".join(row["flags"]) or "none",
        )
    console.print(table)
    listed = {row["validator_id"] for row in rows if row["health"] is not None}
    ok = listed >= set(places)
    verdict = "[green]yes[/green]" if ok else "[red]NO[/red]"
    console.print(
        f"  the fleet table lists the {len(places)} devices with their reports: {verdict}"
    )
    return ok
