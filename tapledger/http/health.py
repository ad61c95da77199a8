"""`GET /healthz`: the stores answer, and every follower keeps up with the event log.

A follower that has fallen behind serves stale reads (balances, the deny list, journeys) while
everything else looks well, so each one's lag is reported and any past the configured bound
(`TAPLEDGER_HEALTH_LAG_MAX`) makes the whole service `degraded`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from tapledger.bootstrap import Container

HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"description": "degraded: a store does not answer or a follower lags past the bound"}
}


def follower_lags(container: Container) -> dict[str, Callable[[], int]]:
    """Each follower's lag, in notifications of the log it follows not applied yet."""
    return {
        "ledger": container.follower.lag,
        "cards": container.card_follower.lag,
        "tap_views": container.tap_follower.lag,
        # The pricing follower turns taps into journeys and charges; the views follow it.
        "journeys": container.journeys.lag,
        "journey_views": container.journey_follower.lag,
        # Lots, sessions and free places; the sweeper finds its work there.
        "parking": container.parking.follower.lag,
    }


def healthz(request: Request) -> JSONResponse:
    """Liveness and readiness: the event store, the read models and hot state answer, and no
    follower lags more than `health_lag_max` notifications."""
    container: Container = request.app.state.container
    lag_max = container.settings.health_lag_max
    checks = {
        "event_store": _check(lambda: container.ledger.recorder.max_notification_id()),
        "read_models": _check(container.follower.position),
        "hot_state": _check(container.hot_state.ping),
    }
    lags: dict[str, int] = {}
    for name, lag in follower_lags(container).items():
        try:
            lags[name] = lag()
        except Exception as error:  # a health check reports every failure, whatever its type
            checks[f"follower_{name}"] = f"error: {type(error).__name__}"
    behind = sorted(name for name, lag in lags.items() if lag > lag_max)
    checks["followers"] = f"behind: {', '.join(behind)}" if behind else "ok"
    healthy = all(value == "ok" for value in checks.values())
    body: dict[str, Any] = {
        "status": "ok" if healthy else "degraded",
        "checks": checks,
        # The worst lag, as before every follower was reported; `followers` names each.
        "follower_lag": max(lags.values(), default=0),
        "followers": lags,
        "lag_max": lag_max,
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


def _check(probe: Callable[[], Any]) -> str:
    try:
        result = probe()
    except Exception as error:  # a health check reports every failure, whatever its type
        return f"error: {type(error).__name__}"
    return "error: no answer" if result is False else "ok"
