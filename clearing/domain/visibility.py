"""Who sees what of clearing: the scheme's staff see every operator; an operator's finance team
sees its own operator only.

An operator sees, of each cycle, its own totals and payout, its own lines, and two of the
cycle's files: its lines (`lines-<operator>.csv`) and its statement (`statement-<operator>.csv`).
The positions of the other parties, the suspense, the settlement instructions (pain.001, which
name every payee's bank account) and the checksums are the scheme's. A file it may not see is
answered as a file that does not exist, so no name can be probed.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearing.domain.errors import ClearingError


@dataclass(frozen=True, slots=True)
class Viewer:
    operator_id: str | None = None  # None: the scheme's staff

    @property
    def is_staff(self) -> bool:
        return self.operator_id is None

    def sees(self, operator_id: str) -> bool:
        return self.operator_id is None or operator_id == self.operator_id

    def lines_of(self, requested: str | None) -> str | None:
        """The operator whose lines a search covers: the one requested (None: every line,
        suspense included) for staff; an operator's own, and never another's."""
        if self.operator_id is None:
            return requested
        if requested is not None and requested != self.operator_id:
            raise OperatorOutOfScope(requested)
        return self.operator_id

    def sees_file(self, name: str) -> bool:
        if self.operator_id is None:
            return True
        return name in (f"lines-{self.operator_id}.csv", f"statement-{self.operator_id}.csv")


class OperatorOutOfScope(ClearingError):
    """An operator's token asking for another operator's clearing data."""

    code = "clearing_operator_out_of_scope"

    def __init__(self, operator_id: str) -> None:
        super().__init__(f"this token may not read the clearing data of operator {operator_id!r}")
        self.operator_id = operator_id
