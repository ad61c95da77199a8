"""Many independent ledger commands in as few transactions as their refusals allow.

`Ledger.execute_all` commits a whole list or nothing, and names the first command it refused.
The commands given here do not depend on each other (each is one session's hold, post or
debit), so a refusal is that command's answer alone: it is set aside and the rest are sent
again. A batch without refusals is one transaction; each refusal costs one more. A batch that
lost its race to other writers twice over is run by `Ledger.execute_batch`, which falls back to
one command at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

from ticketing.accounts.application.ledger import LEDGER_BATCH_MAX, Ledger
from ticketing.accounts.domain.commands import Command
from ticketing.accounts.domain.errors import LedgerError

# None: the command was applied (or had been, by an earlier attempt of the same request).
CommandOutcome = LedgerError | None


def run_commands(ledger: Ledger, commands: Sequence[Command]) -> list[CommandOutcome]:
    """Applies each command once; its refusal, or None, in the order given."""
    outcomes: list[CommandOutcome] = [None] * len(commands)
    for start in range(0, len(commands), LEDGER_BATCH_MAX):
        chunk = list(range(start, min(start + LEDGER_BATCH_MAX, len(commands))))
        _run_chunk(ledger, commands, chunk, outcomes)
    return outcomes


def _run_chunk(
    ledger: Ledger,
    commands: Sequence[Command],
    indexes: list[int],
    outcomes: list[CommandOutcome],
) -> None:
    # Each pass either commits what is left or sets one refused command aside.
    while indexes:
        outcome = ledger.execute_all([commands[index] for index in indexes])
        if outcome.committed:
            return
        if outcome.refused_at is None:
            results = ledger.execute_batch([commands[index] for index in indexes])
            for index, result in zip(indexes, results, strict=True):
                outcomes[index] = result if isinstance(result, LedgerError) else None
            return
        refused = indexes.pop(outcome.refused_at)
        outcomes[refused] = outcome.error
