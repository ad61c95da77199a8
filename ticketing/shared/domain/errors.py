"""The base of every error a context refuses a request with. Each `code` is stable and travels
to clients unchanged; each context's API maps its own errors to HTTP statuses."""

from __future__ import annotations


class DomainError(Exception):
    """Bad input, or a state that refuses the request (as opposed to a bug, which is an
    `InvariantViolated`)."""

    code = "domain_error"
