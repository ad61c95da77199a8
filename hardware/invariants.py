"""Programmer-error checks that survive `python -O`.

The same contract as `ticketing.shared.domain.invariants`, repeated here because `hardware`
may import nothing of ours outside itself.
"""


class InvariantViolated(AssertionError):
    """A bug: the code broke one of its own promises. Never a card's or a user's mistake."""


def require(condition: bool, message: str = "invariant violated") -> None:
    """Crash on a broken invariant; unlike `assert`, this is never compiled out."""
    if not condition:
        raise InvariantViolated(message)
