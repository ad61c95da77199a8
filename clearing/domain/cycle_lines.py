"""The lines of a closed cycle as they are kept and written: one per operator share of a
movement, and one per movement carved out to suspense, numbered in the store's order.

A cycle's lines are kept apart from its events (a city day has millions), and pinned by the
SHA-256 of their canonical form, recorded when the cycle closes: its files are written from
the kept lines and checked against it, so a re-run writes the same bytes or refuses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from json.encoder import encode_basestring_ascii

from ticketing.shared.domain.invariants import require

SUSPENSE_OPERATOR = ""  # the operator id of a suspense line: nobody's yet
# The digest's JSON, made once: `json.dumps` with these options builds an encoder per call, a
# cost per line twice a cycle (when it closes, and when its files are checked).
_CANONICAL = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))
# The encoder's own escaping of a string (quotes included) when it writes ASCII only.
_json_text = encode_basestring_ascii
_STR_ONLY = {str}


@dataclass(frozen=True, slots=True)
class CycleLine:
    line_no: int  # 1.. in the cycle, in the store's order
    notification_id: int  # the ledger movement it comes from
    operator_id: str  # SUSPENSE_OPERATOR for a suspense line
    amount_vnd: int  # revenue (negative: a reversal); of a suspense line, the revenue it holds
    category: str  # the movement's category; "" when unclassified
    origin: str  # what the transaction id names (journey, parking_session, ...); "" if none
    transaction_id: str  # the journey, session, record or reservation id in hex
    reference: str  # the ledger's transfer or hold id
    suspense_code: str = ""  # why it is in suspense; "" for an operator's line
    reason: str = ""
    # The earlier line this one settles (`line_key`): a suspense line placed, a line disputed or
    # a dispute released. "" for a line of this cycle's own movements.
    resolves: str = ""

    def __post_init__(self) -> None:
        require(self.line_no > 0 and self.notification_id > 0, "lines are numbered from 1")
        require(
            (self.operator_id == SUSPENSE_OPERATOR) == bool(self.suspense_code),
            "a line is an operator's or in suspense with a code",
        )

    @property
    def in_suspense(self) -> bool:
        return self.operator_id == SUSPENSE_OPERATOR

    def canonical(self) -> bytes:
        """One line of the digest: every field as a JSON array, in the order declared."""
        line_no, notification_id, amount_vnd = self.line_no, self.notification_id, self.amount_vnd
        texts = (
            self.operator_id,
            self.category,
            self.origin,
            self.transaction_id,
            self.reference,
            self.suspense_code,
            self.reason,
            self.resolves,
        )
        if (
            type(line_no) is int
            and type(notification_id) is int
            and type(amount_vnd) is int
            and set(map(type, texts)) == _STR_ONLY
        ):
            # What the encoder writes for these types, its own string escaping included,
            # without walking a list: a cycle's lines are hashed twice, millions a day.
            operator, category, origin, transaction, reference, code, reason, resolves = map(
                _json_text, texts
            )
            return (
                f"[{line_no},{notification_id},{operator},{amount_vnd},{category},{origin},"
                f"{transaction},{reference},{code},{reason},{resolves}]\n"
            ).encode()
        fields = [
            self.line_no,
            self.notification_id,
            self.operator_id,
            self.amount_vnd,
            self.category,
            self.origin,
            self.transaction_id,
            self.reference,
            self.suspense_code,
            self.reason,
            self.resolves,
        ]
        return (_CANONICAL.encode(fields) + "\n").encode()


def line_key(day: date, line_no: int) -> str:
    """How a later cycle names a line of an earlier one: `<yyyy-mm-dd>#<line no>`."""
    return f"{day.isoformat()}#{line_no}"


def parse_line_key(key: str) -> tuple[date, int]:
    day, _, line_no = key.partition("#")
    return date.fromisoformat(day), int(line_no)


class LinesDigest:
    """The SHA-256 of a cycle's lines in order, and their count, taken as they stream by."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.count = 0

    def add(self, line: CycleLine) -> None:
        require(line.line_no == self.count + 1, "lines come in order, with no gap")
        self._hash.update(line.canonical())
        self.count += 1

    def add_all(self, lines: Iterable[CycleLine]) -> None:
        for line in lines:
            self.add(line)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
