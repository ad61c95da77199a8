"""Reads a settlement terms file (`clearing/operators/<city>-terms.json`).

The format: an object with `note` (free text), `scheme` (`{name, account, bic}`: the account
that pays every payout) and `operators` (an object from operator id to `{commission_bps,
bank: {name, account, bic}}`). An account is a bank's own number, or an IBAN when it starts
with two letters and two digits and passes its check. Anything else is refused with
`InvalidTerms`, naming what is wrong.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from clearing.domain import limits
from clearing.domain.bank_accounts import AccountKind, BankAccount, Party
from clearing.domain.errors import ClearingError
from clearing.domain.terms import OperatorTerms, SettlementTerms

HANOI = "hanoi"
_KEYS = {"note", "scheme", "operators"}
_PARTY_KEYS = {"name", "account", "bic"}
_OPERATOR_KEYS = {"commission_bps", "bank"}
_IBAN_START = re.compile(r"[A-Z]{2}[0-9]{2}")


class InvalidTerms(ClearingError):
    code = "terms_invalid"


def load_packaged_terms(city: str = HANOI) -> SettlementTerms:
    if not city.isalnum():
        raise InvalidTerms(f"no terms file for {city[:40]!r}")
    data = resources.files("clearing").joinpath("operators", f"{city}-terms.json").read_bytes()
    return parse_terms(data)


def load_terms_file(path: Path) -> SettlementTerms:
    with path.open("rb") as file:
        return parse_terms(file.read(limits.OPERATOR_FILE_BYTES_MAX + 1))


def parse_terms(data: bytes) -> SettlementTerms:
    if len(data) > limits.OPERATOR_FILE_BYTES_MAX:
        raise InvalidTerms(f"a terms file is at most {limits.OPERATOR_FILE_BYTES_MAX} bytes")
    try:
        document: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidTerms(f"not a JSON document: {error}") from None
    if not isinstance(document, dict) or set(document) != _KEYS:
        raise InvalidTerms(f"a terms file is an object with exactly {sorted(_KEYS)}")
    operators = document["operators"]
    if not isinstance(operators, dict) or len(operators) > limits.OPERATORS_MAX:
        raise InvalidTerms(f"`operators` is an object of at most {limits.OPERATORS_MAX}")
    return SettlementTerms(
        scheme=_party(document["scheme"], "the scheme"),
        operators={str(op): _operator(op, row) for op, row in sorted(operators.items())},
    )


def _operator(operator_id: str, row: object) -> OperatorTerms:
    if not isinstance(row, dict) or set(row) != _OPERATOR_KEYS:
        raise InvalidTerms(f"operator {operator_id!r}: an object with {sorted(_OPERATOR_KEYS)}")
    bps = row["commission_bps"]
    if type(bps) is not int or not 0 <= bps <= limits.COMMISSION_BPS_MAX:
        raise InvalidTerms(f"operator {operator_id!r}: commission_bps is an int 0..10000")
    return OperatorTerms(bps, _party(row["bank"], f"operator {operator_id!r}"))


def _party(row: object, whose: str) -> Party:
    if not isinstance(row, dict) or set(row) != _PARTY_KEYS:
        raise InvalidTerms(f"{whose}: a bank party is an object with {sorted(_PARTY_KEYS)}")
    if not all(isinstance(row[key], str) for key in _PARTY_KEYS):
        raise InvalidTerms(f"{whose}: name, account and bic are strings")
    number = row["account"]
    kind = AccountKind.IBAN if _IBAN_START.match(number) else AccountKind.LOCAL
    try:
        return Party(row["name"], BankAccount(number, row["bic"], kind))
    except ClearingError as error:
        raise InvalidTerms(f"{whose}: {error}") from None
