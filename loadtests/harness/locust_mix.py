"""Locust, headless, running the scenario mix of `loadtests/locustfile.py`: its request
statistics, and the tally of answers the locustfile writes at the end."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LOCUSTFILE = Path(__file__).resolve().parents[1] / "locustfile.py"
# How long Locust lets a user finish its task once the run's time is up.
STOP_TIMEOUT_S = 5
# Beyond its run, how long Locust may take to start and to stop before it is given up on.
LOCUST_OVERRUN_S = 120


@dataclass(frozen=True)
class LocustResult:
    rows: list[dict[str, str]]
    tally: dict[str, int]
    users: int
    seconds: int


def run_locust(
    base_url: str, fixtures: Path, work: Path, *, users: int, seconds: int
) -> LocustResult:
    prefix = work / "locust"
    summary = work / "locust-summary.json"
    env = os.environ | {"LOADTEST_FIXTURES": str(fixtures), "LOADTEST_SUMMARY": str(summary)}
    command = [
        str(Path(sys.executable).with_name("locust")),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--host",
        base_url,
        "--csv",
        str(prefix),
        "--only-summary",
        "--stop-timeout",
        str(STOP_TIMEOUT_S),
        "--loglevel",
        "WARNING",
    ]
    subprocess.run(  # noqa: S603
        command,
        env=env,
        timeout=seconds + LOCUST_OVERRUN_S,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    with Path(f"{prefix}_stats.csv").open() as stats:
        rows = list(csv.DictReader(stats))
    tally: dict[str, int] = json.loads(summary.read_text()) if summary.exists() else {}
    return LocustResult(rows, tally, users, seconds)
