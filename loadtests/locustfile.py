"""The tap path under a realistic mix: validators draining their outboxes, gates asking online.

    LOADTEST_FIXTURES=fixtures.json locust -f loadtests/locustfile.py --headless -u N -r N -t 60s \
        --host http://127.0.0.1:PORT

`loadtests/run_taps.py` seeds a server and writes the fixtures file; every tap in it is real and
pre-built (TL1 codes signed by the simulated phones, card session proofs MAC'd with the SAM's
master keys), so this process spends no CPU on signing while it measures.

* `ValidatorUser` (bus and metro validators): uploads its taps in order, in batches of
  `BATCH_MIN`..`BATCH_MAX` (`POST /v1/taps/batch`), about once a second. With probability
  `RESEND_SHARE` it re-sends the batch it sent before instead, as a device that lost the
  acknowledgement does; the server must answer `duplicate` for each of those taps.
* `GateUser` (metro gates with a link): one tap per request (`POST /v1/taps`), at a steady pace.

The fixtures already hold the mix of media and the share of forged codes (`run_taps.py` builds
them). Each user takes the next unused device from the file; a run with more users than devices
stops the extra users. When a device's taps run out, the user stops rather than re-sending taps
as new (which would measure the duplicate path, not ingestion).

`LOADTEST_SUMMARY`, when set, names a JSON file this process writes at the end: taps sent and
the servers' per-tap answers, which the request statistics alone do not show.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, constant_throughput, events, task

FIXTURES_ENV = "LOADTEST_FIXTURES"
SUMMARY_ENV = "LOADTEST_SUMMARY"
BATCH_MIN = 20
BATCH_MAX = 100
RESEND_SHARE = 0.01
GATE_TAPS_PER_S = 5.0

Tap = dict[str, Any]
Device = dict[str, Any]


def _load() -> dict[str, list[Device]]:
    path = os.environ.get(FIXTURES_ENV)
    if not path:
        return {"validators": [], "gates": []}
    fixtures: dict[str, list[Device]] = json.loads(Path(path).read_text())
    return fixtures


FIXTURES = _load()
_validators: Iterator[Device] = iter(FIXTURES["validators"])
_gates: Iterator[Device] = iter(FIXTURES["gates"])
TALLY: Counter[str] = Counter()


def _count_results(results: list[dict[str, Any]]) -> None:
    for result in results:
        TALLY[f"result_{result['status']}"] += 1
        if result["reason"]:
            TALLY[f"reason_{result['reason']}"] += 1


class ValidatorUser(FastHttpUser):
    """A bus or metro validator: its outbox drains in batches."""

    weight = 3
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        device = next(_validators, None)
        if device is None:
            self.stop()
            return
        self.device = device
        self.headers = {"Authorization": f"Bearer {device['token']}"}
        self.taps: list[Tap] = device["taps"]
        self.next = 0
        self.last_batch: list[Tap] = []

    @task
    def upload(self) -> None:
        resend = bool(self.last_batch) and random.random() < RESEND_SHARE
        if resend:
            batch = self.last_batch
        else:
            size = random.randint(BATCH_MIN, BATCH_MAX)
            batch = self.taps[self.next : self.next + size]
            if not batch:
                self.stop()
                return
            self.next += len(batch)
        body = {"validator_id": self.device["validator_id"], "taps": batch}
        with self.client.post(
            "/v1/taps/batch",
            json=body,
            headers=self.headers,
            name="POST /v1/taps/batch",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            results = response.json()["results"]
            _count_results(results)
            duplicates = sum(r["status"] == "duplicate" for r in results)
            if resend and duplicates != len(batch):
                response.failure("a re-sent batch was not answered duplicate")
            elif not resend and duplicates:
                response.failure("new taps were answered duplicate")
        TALLY["taps_sent"] += len(batch)
        TALLY["taps_resent" if resend else "taps_new"] += len(batch)
        TALLY["batches_resent" if resend else "batches_new"] += 1
        self.last_batch = batch


class GateUser(FastHttpUser):
    """A metro gate with a link: asks for the backend's decision on each tap."""

    weight = 1
    wait_time = constant_throughput(GATE_TAPS_PER_S)

    def on_start(self) -> None:
        device = next(_gates, None)
        if device is None:
            self.stop()
            return
        self.device = device
        self.headers = {"Authorization": f"Bearer {device['token']}"}
        self.taps: list[Tap] = device["taps"]
        self.next = 0
        self.last: Tap | None = None

    @task
    def check(self) -> None:
        resend = self.last is not None and random.random() < RESEND_SHARE
        if resend and self.last is not None:
            tap = self.last
        else:
            if self.next >= len(self.taps):
                self.stop()
                return
            tap = self.taps[self.next]
            self.next += 1
        body = {"validator_id": self.device["validator_id"], "tap": tap}
        with self.client.post(
            "/v1/taps", json=body, headers=self.headers, name="POST /v1/taps", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            result = response.json()
            _count_results([result])
            if (result["status"] == "duplicate") != resend:
                response.failure("a duplicate answer does not match what was sent")
        TALLY["single_sent"] += 1
        TALLY["single_resent" if resend else "single_new"] += 1
        self.last = tap


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _write_summary(**_kwargs: Any) -> None:
    path = os.environ.get(SUMMARY_ENV)
    if path:
        Path(path).write_text(json.dumps(dict(TALLY), sort_keys=True))
