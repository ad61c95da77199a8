"""Bank accounts a settlement pays from and to, checked as ISO 20022 and the banks read them.

Vietnamese banks number accounts locally (no IBAN): a transfer names the account by its number
and the bank by its BIC. An IBAN is accepted too, for an operator banking abroad; its check
digits are verified (ISO 13616, mod 97) so a slipped digit is refused here rather than by a bank
a day later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from clearing.domain import limits
from clearing.domain.errors import InvalidBankDetails, InvalidPayout

# ISO 20022 `BICFIDec2014Identifier`: bank (4), country (2), location (2), branch (3, optional).
_BIC = re.compile(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?")
# ISO 20022 `IBAN2007Identifier`.
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}")
# A bank's own account number: letters and digits, at most `Max34Text`.
_LOCAL_NUMBER = re.compile(r"[A-Za-z0-9]{1,34}")


class AccountKind(StrEnum):
    IBAN = "iban"
    LOCAL = "local"


@dataclass(frozen=True, slots=True)
class BankAccount:
    """An account at a bank: its number (an IBAN, or the bank's own number) and the bank's BIC."""

    number: str
    bic: str
    kind: AccountKind = AccountKind.LOCAL

    def __post_init__(self) -> None:
        check_bic(self.bic)
        if self.kind is AccountKind.IBAN:
            check_iban(self.number)
        elif not isinstance(self.number, str) or not _LOCAL_NUMBER.fullmatch(self.number):
            raise InvalidBankDetails("account number", self.number, "not 1..34 letters or digits")


@dataclass(frozen=True, slots=True)
class Party:
    """Who pays or is paid: a name as the bank holds it, and the account."""

    name: str
    account: BankAccount

    def __post_init__(self) -> None:
        check_text(self.name, what="a party's name")


def check_bic(bic: str) -> None:
    if not isinstance(bic, str) or not _BIC.fullmatch(bic):
        raise InvalidBankDetails("BIC", bic, "not 8 or 11 capital letters and digits")


def check_iban(iban: str) -> None:
    if not isinstance(iban, str) or not _IBAN.fullmatch(iban):
        raise InvalidBankDetails("IBAN", iban, "not a country code, 2 check digits and 1..30 more")
    # ISO 13616: move the first four characters to the end, letters to 10..35, mod 97 is 1.
    rearranged = (iban[4:] + iban[:4]).upper()
    if int("".join(str(int(char, 36)) for char in rearranged)) % 97 != 1:
        raise InvalidBankDetails("IBAN", iban, "its check digits do not match")


def check_text(text: str, *, what: str) -> None:
    """ISO 20022 `Max140Text`, printable (so it is valid XML), with no padding around it."""
    if (
        not isinstance(text, str)
        or not 0 < len(text) <= limits.PARTY_NAME_MAX_CHARS
        or not text.isprintable()
        or text != text.strip()
    ):
        raise InvalidPayout(
            f"{what} is 1..{limits.PARTY_NAME_MAX_CHARS} printable characters, "
            f"not padded: {str(text)[:80]!r}"
        )
