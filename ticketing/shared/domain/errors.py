"""The base of every error a context refuses a request with. Each `code` is stable and travels
to clients unchanged; each context's API maps its own errors to HTTP statuses."""

from __future__ import annotations


class DomainError(Exception):
    """Bad input, or a state that refuses the request (as opposed to a bug, which is an
    `InvariantViolated`)."""

    code = "domain_error"

    def details(self) -> dict[str, str]:
        """Fields the problem answer carries beside `code` and `detail`, for a client to act on
        (the session that is already open, say); none by default."""
        return {}


class Contended(DomainError):
    """Other writers changed what this request changes before each of its saves, as many times
    as a save is tried; nothing was stored, and the same request may be sent again later.

    A context that promised clients a code of its own for this (`ledger_busy`) subclasses it,
    so the one status table entry and the one retry helper still apply."""

    code = "contended"

    def __init__(self, what: str, attempts: int) -> None:
        super().__init__(f"{what} changed under {attempts} attempts in a row; retry later")
        self.what = what
        self.attempts = attempts
