"""Reads a bank's end-of-day statement, ISO 20022 camt.053 (versions 001.02 to 001.14), into
the domain's `BankStatement`.

The file is untrusted: it is bounded in bytes and depth, parsed with no DTD, no entity
expansion and no network, and a document that declares a DOCTYPE at all is refused (camt.053
never needs one; an XXE or entity-expansion payload always does). Only what matching payouts
needs is read, and read strictly: the account, the opening and closing booked balances, and the
booked entries with their end-to-end ids. Amounts are VND, which has no minor unit.

Why lxml and not a camt library: see docs/clearing-files.md, "Bank statements".
"""

from __future__ import annotations

import re
from datetime import date

from lxml import etree

from clearing.domain import limits
from clearing.domain.statements import (
    BankStatement,
    Direction,
    ForeignCurrency,
    InvalidStatement,
    StatementEntry,
    StatementTooLarge,
    parse_date,
    parse_vnd,
)

# camt.053.001.02 (2009) is the oldest version banks still send; later ones only add elements.
_NAMESPACE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.(?P<version>[0-9]{2})")
VERSION_MIN = 2
VERSION_MAX = 14
CURRENCY = "VND"
# ISO's placeholder for an id the payer did not give.
NOT_PROVIDED = "NOTPROVIDED"
_OPENING = ("OPBD", "PRCD")  # opening booked; else the previous day's closing booked
_CLOSING = "CLBD"


def read_camt053(data: bytes, *, account_id: str | None = None) -> BankStatement:
    """The statement of `account_id` in a camt.053 file (its only statement when None).

    Raises `InvalidStatement` (or one of its kinds: `StatementTooLarge`, `FractionalDong`,
    `ForeignCurrency`, `StatementUnbalanced`) for a file that is not a readable camt.053 of a
    VND account; the message names the line of the file where it can."""
    root = _parse(data)
    xml = _Reader(_namespace_of(root))
    statements = xml.children(xml.child(root, "BkToCstmrStmt"), "Stmt")
    chosen = [
        stmt for stmt in statements if account_id is None or _account_id(xml, stmt) == account_id
    ]
    if len(chosen) != 1:
        wanted = "the only statement" if account_id is None else f"account {account_id!r}"
        raise InvalidStatement(f"{len(chosen)} statements of {wanted} in the file")
    return _statement(xml, chosen[0])


def _parse(data: bytes) -> etree._Element:
    if len(data) > limits.STATEMENT_BYTES_MAX:
        raise StatementTooLarge(f"{len(data)} bytes, at most {limits.STATEMENT_BYTES_MAX}")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        raise InvalidStatement(f"not well-formed XML: {error.msg}", line=error.lineno) from None
    if root.getroottree().docinfo.doctype:
        raise InvalidStatement("a statement declares no DOCTYPE (entities are refused)", line=1)
    _check_depth(root)
    return root


def _check_depth(root: etree._Element) -> None:
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > limits.STATEMENT_XML_DEPTH_MAX:
            raise StatementTooLarge(
                f"XML nested deeper than {limits.STATEMENT_XML_DEPTH_MAX}", line=element.sourceline
            )
        stack.extend((child, depth + 1) for child in element)


def _namespace_of(root: etree._Element) -> str:
    qname = etree.QName(root)
    match = _NAMESPACE.fullmatch(qname.namespace or "")
    if qname.localname != "Document" or match is None:
        raise InvalidStatement(
            f"not a camt.053 document: {qname.text[:120]!r}", line=root.sourceline
        )
    if not VERSION_MIN <= int(match.group("version")) <= VERSION_MAX:
        raise InvalidStatement(f"camt.053 version {match.group('version')} is not read")
    return qname.namespace or ""


class _Reader:
    """Finds children in the document's namespace and reports the line of what is wrong."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def optional(self, parent: etree._Element, *path: str) -> etree._Element | None:
        element: etree._Element | None = parent
        for name in path:
            if element is None:
                return None
            element = element.find(f"{{{self.namespace}}}{name}")
        return element

    def child(self, parent: etree._Element, *path: str) -> etree._Element:
        element = self.optional(parent, *path)
        if element is None:
            raise InvalidStatement(f"{'/'.join(path)} is missing", line=parent.sourceline)
        return element

    def children(self, parent: etree._Element, name: str) -> list[etree._Element]:
        return parent.findall(f"{{{self.namespace}}}{name}")

    def text(self, parent: etree._Element, *path: str) -> str | None:
        element = self.optional(parent, *path)
        if element is None or element.text is None or not element.text.strip():
            return None
        return element.text.strip()

    def required_text(self, parent: etree._Element, *path: str) -> str:
        text = self.text(parent, *path)
        if text is None:
            raise InvalidStatement(f"{'/'.join(path)} is missing", line=parent.sourceline)
        return text


def _account_id(xml: _Reader, stmt: etree._Element) -> str:
    account = xml.child(stmt, "Acct", "Id")
    found = xml.text(account, "IBAN") or xml.text(account, "Othr", "Id")
    if found is None:
        raise InvalidStatement("the account has no IBAN or Othr/Id", line=account.sourceline)
    return found


def _statement(xml: _Reader, stmt: etree._Element) -> BankStatement:
    currency = xml.text(stmt, "Acct", "Ccy")
    if currency is not None and currency != CURRENCY:
        raise ForeignCurrency(f"the account is in {currency!r}, not VND", line=stmt.sourceline)
    opening, closing = _balances(xml, stmt)
    entries: list[StatementEntry] = []
    ntries = xml.children(stmt, "Ntry")
    if len(ntries) > limits.STATEMENT_ENTRIES_MAX:
        raise StatementTooLarge(f"{len(ntries)} entries, at most {limits.STATEMENT_ENTRIES_MAX}")
    for ntry in ntries:
        entries.extend(_entries(xml, ntry))
    try:
        return BankStatement(
            account_id=_account_id(xml, stmt),
            statement_date=closing[1],
            opening_balance_vnd=opening[0],
            closing_balance_vnd=closing[0],
            entries=tuple(entries),
        )
    except InvalidStatement as error:
        raise error.at_line(stmt.sourceline) from None


def _balances(xml: _Reader, stmt: etree._Element) -> tuple[tuple[int, date], tuple[int, date]]:
    found: dict[str, tuple[int, date]] = {}
    for bal in xml.children(stmt, "Bal"):
        code = xml.text(bal, "Tp", "CdOrPrtry", "Cd")
        if code in (*_OPENING, _CLOSING) and code not in found:
            amount = _amount(xml.child(bal, "Amt"))
            sign = -1 if _direction(xml, bal) is Direction.DEBIT else 1
            found[code] = (sign * amount, _date(xml, xml.child(bal, "Dt")))
    opening = found.get("OPBD") or found.get("PRCD")
    if opening is None or _CLOSING not in found:
        raise InvalidStatement(
            "an opening and a closing booked balance are required", line=stmt.sourceline
        )
    return opening, found[_CLOSING]


def _entries(xml: _Reader, ntry: etree._Element) -> list[StatementEntry]:
    """One domain entry per transaction of a booked `Ntry`: a batch booking (one entry, several
    `TxDtls`) is split by each transaction's own amount, which must add up to the entry's."""
    status = xml.text(ntry, "Sts", "Cd") or xml.text(ntry, "Sts", "Prtry") or xml.text(ntry, "Sts")
    if status != "BOOK":
        return []  # pending or information only: not a booking, confirms nothing
    amount_vnd = _amount(xml.child(ntry, "Amt"))
    direction = _direction(xml, ntry)
    booked = _date(xml, xml.child(ntry, "BookgDt"))
    reference = xml.text(ntry, "AcctSvcrRef")
    details = [tx for dtls in xml.children(ntry, "NtryDtls") for tx in xml.children(dtls, "TxDtls")]
    if len(details) <= 1:
        parts = [(details[0] if details else None, amount_vnd)]
    else:
        parts = [(tx, _transaction_amount(xml, tx)) for tx in details]
        if sum(part for _, part in parts) != amount_vnd:
            raise InvalidStatement(
                "a batch entry's transactions do not add up to it", line=ntry.sourceline
            )
    try:
        return [_entry(xml, tx, part, direction, booked, reference) for tx, part in parts]
    except InvalidStatement as error:
        raise error.at_line(ntry.sourceline) from None


def _entry(
    xml: _Reader,
    tx: etree._Element | None,
    amount_vnd: int,
    direction: Direction,
    booked: date,
    entry_reference: str | None,
) -> StatementEntry:
    end_to_end_id = None if tx is None else xml.text(tx, "Refs", "EndToEndId")
    own_reference = None if tx is None else xml.text(tx, "Refs", "AcctSvcrRef")
    name, account = _counterparty(xml, tx, direction)
    return StatementEntry(
        booking_date=booked,
        amount_vnd=amount_vnd,
        direction=direction,
        end_to_end_id=None if end_to_end_id == NOT_PROVIDED else end_to_end_id,
        bank_reference=own_reference or entry_reference,
        counterparty_name=name,
        counterparty_account=account,
    )


def _counterparty(
    xml: _Reader, tx: etree._Element | None, direction: Direction
) -> tuple[str | None, str | None]:
    """The other party's name and account: of a debit its creditor, of a credit its debtor."""
    related = None if tx is None else xml.optional(tx, "RltdPties")
    if related is None:
        return None, None
    party, account = ("Cdtr", "CdtrAcct") if direction is Direction.DEBIT else ("Dbtr", "DbtrAcct")
    # 001.02 names the party directly; 001.08 and later wrap it in Pty.
    name = xml.text(related, party, "Nm") or xml.text(related, party, "Pty", "Nm")
    number = xml.text(related, account, "Id", "IBAN") or xml.text(
        related, account, "Id", "Othr", "Id"
    )
    return name, number


def _transaction_amount(xml: _Reader, tx: etree._Element) -> int:
    # An lxml element without children is false: compare with None, never use `or`.
    amt = xml.optional(tx, "Amt")
    if amt is None:
        amt = xml.optional(tx, "AmtDtls", "TxAmt", "Amt")
    if amt is None:
        raise InvalidStatement("a batch entry's transaction has no amount", line=tx.sourceline)
    return _amount(amt)


def _amount(amt: etree._Element) -> int:
    currency = amt.get("Ccy")
    if currency != CURRENCY:
        raise ForeignCurrency(f"an amount in {currency!r}, not VND", line=amt.sourceline)
    try:
        return parse_vnd((amt.text or "").strip())
    except InvalidStatement as error:
        raise error.at_line(amt.sourceline) from None


def _direction(xml: _Reader, parent: etree._Element) -> Direction:
    code = xml.required_text(parent, "CdtDbtInd")
    try:
        return Direction(code)
    except ValueError:
        raise InvalidStatement(
            f"CdtDbtInd is CRDT or DBIT: {code[:10]!r}", line=parent.sourceline
        ) from None


def _date(xml: _Reader, parent: etree._Element) -> date:
    text = xml.text(parent, "Dt") or (xml.text(parent, "DtTm") or "")[:10]
    try:
        return parse_date(text)
    except InvalidStatement as error:
        raise error.at_line(parent.sourceline) from None
