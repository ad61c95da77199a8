"""Authentication for the middleware tests: the real middleware over a table of tokens."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI

from tapledger.http.authentication import AuthenticationMiddleware
from tapledger.http.hotstate import HotState
from ticketing.shared.access import Principal, Role

ALICE_PRINCIPAL = Principal(token_id="alice", role=Role.OPERATOR)
BOB_PRINCIPAL = Principal(token_id="bob", role=Role.OPERATOR)
TOKENS = {"alice-token": ALICE_PRINCIPAL, "bob-token": BOB_PRINCIPAL}
ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}
FAILURES_PER_WINDOW = 1000


class TableAuthenticator:
    """An `Authenticator` over a fixed table; it counts the lookups that would cost a query."""

    def __init__(self, tokens: Mapping[str, Principal] = TOKENS) -> None:
        self.tokens = dict(tokens)
        self.lookups = 0
        self.remembered: set[str] = set()

    def authenticate(self, token: str) -> Principal | None:
        self.lookups += 1
        principal = self.tokens.get(token)
        if principal is not None:
            self.remembered.add(token)
        return principal

    def recent(self, token: str) -> Principal | None:
        return self.tokens.get(token) if token in self.remembered else None


def authenticate_everything(
    app: FastAPI, hot_state: HotState, *, window_ms: int = 60_000, prefix: str = "/"
) -> TableAuthenticator:
    """Adds authentication outside the middlewares added so far (it runs before them)."""
    authenticator = TableAuthenticator()
    app.add_middleware(
        AuthenticationMiddleware,
        authenticator=authenticator,
        hot_state=hot_state,
        failures_per_window=FAILURES_PER_WINDOW,
        window_ms=window_ms,
        protected_prefix=prefix,
    )
    return authenticator
