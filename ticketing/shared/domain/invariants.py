"""Programmer-error checks that survive `python -O`."""


class InvariantViolated(AssertionError):
    """A bug: the code broke one of its own promises. Never a user's mistake."""


def require(condition: bool, message: str = "invariant violated") -> None:
    """Crash on a broken invariant; unlike `assert`, this is never compiled out."""
    if not condition:
        raise InvariantViolated(message)
