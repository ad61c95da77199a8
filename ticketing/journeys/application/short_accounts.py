"""The accounts the ledger refused a charge of, remembered from one section to the next.

A rider short of money is refused again and again: each refusal throws away the section it
ended and applies that section's taps again. So once refused, an account's taps are applied
alone (charging as they go) until one of them passes the ledger with nothing refused; then
they join the sections again. Applying a tap alone or in a section moves the same money, so
this only decides how much work a rider short of money costs, never what they pay.
"""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID

# Accounts remembered at most; the least recently refused are forgotten first, and a forgotten
# account costs at most one section applied again.
SHORT_ACCOUNTS_MAX = 10_000


class ShortAccounts:
    def __init__(self, size_max: int = SHORT_ACCOUNTS_MAX) -> None:
        self._size_max = size_max
        self._accounts: OrderedDict[UUID, None] = OrderedDict()

    def __contains__(self, account_id: object) -> bool:
        return account_id in self._accounts

    def __len__(self) -> int:
        return len(self._accounts)

    def add(self, account_id: UUID) -> None:
        self._accounts[account_id] = None
        self._accounts.move_to_end(account_id)
        while len(self._accounts) > self._size_max:
            self._accounts.popitem(last=False)

    def discard(self, account_id: UUID) -> None:
        self._accounts.pop(account_id, None)
