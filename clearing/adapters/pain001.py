"""Writes a cycle's payout batch as an ISO 20022 pain.001.001.09 credit transfer initiation.

The file is deterministic: the same batch gives the same bytes, so re-running a cycle rewrites
its file unchanged. Elements come in the schema's order, each written from the batch and
nothing else (no clock, no random id, no host name); the namespace is the default one, with no
prefix; the encoding is UTF-8, the indentation two spaces. The one instant in the file is the
batch's own, in Vietnam's time (UTC+7, no daylight saving since 1975), to the second.

VND has no minor unit (ISO 4217 exponent 0): amounts are whole dong written without decimals
(`125000`), and the control sums are their exact sums. The layout is described field by field
in `docs/clearing-files.md`; the tests validate every file against the official XSD.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from lxml import etree

from clearing.domain.bank_accounts import AccountKind, BankAccount, Party
from clearing.domain.payouts import PaymentInstruction, PayoutBatch

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
CURRENCY = "VND"
# Transfer (as opposed to a cheque): the only payment method a settlement uses.
PAYMENT_METHOD = "TRF"
VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")
# The root, with the namespace as the default one (no prefix). Parsed from this constant rather
# than built with `nsmap={None: ...}`, which the lxml stub packages type differently.
_EMPTY_DOCUMENT = f'<Document xmlns="{NAMESPACE}"/>'.encode()


def write_pain001(batch: PayoutBatch) -> bytes:
    """The batch as a pain.001.001.09 document: a group header, then one payment-information
    block from the debtor's account with one credit transfer per instruction, in the batch's
    order."""
    document = etree.fromstring(_EMPTY_DOCUMENT)
    initiation = _add(document, "CstmrCdtTrfInitn")
    _group_header(initiation, batch)
    _payment_information(initiation, batch)
    return etree.tostring(
        etree.ElementTree(document), xml_declaration=True, encoding="UTF-8", pretty_print=True
    )


def creation_time(instant: datetime) -> str:
    """`CreDtTm`: the instant in Vietnam's time, to the second, with its offset."""
    return instant.astimezone(VIETNAM_TIME).isoformat(timespec="seconds")


def _group_header(parent: etree._Element, batch: PayoutBatch) -> None:
    header = _add(parent, "GrpHdr")
    _add(header, "MsgId", batch.message_id)
    _add(header, "CreDtTm", creation_time(batch.created_at))
    _add(header, "NbOfTxs", str(len(batch.instructions)))
    _add(header, "CtrlSum", str(batch.total_vnd))
    _add(_add(header, "InitgPty"), "Nm", batch.debtor.name)


def _payment_information(parent: etree._Element, batch: PayoutBatch) -> None:
    block = _add(parent, "PmtInf")
    _add(block, "PmtInfId", batch.message_id)
    _add(block, "PmtMtd", PAYMENT_METHOD)
    _add(block, "NbOfTxs", str(len(batch.instructions)))
    _add(block, "CtrlSum", str(batch.total_vnd))
    _add(_add(block, "ReqdExctnDt"), "Dt", batch.execution_date.isoformat())
    _party(block, "Dbtr", batch.debtor)
    _account(block, "DbtrAcct", batch.debtor.account, currency=True)
    _agent(block, "DbtrAgt", batch.debtor.account)
    for instruction in batch.instructions:
        _credit_transfer(block, instruction)


def _credit_transfer(parent: etree._Element, instruction: PaymentInstruction) -> None:
    transfer = _add(parent, "CdtTrfTxInf")
    _add(_add(transfer, "PmtId"), "EndToEndId", instruction.end_to_end_id)
    amount = _add(_add(transfer, "Amt"), "InstdAmt", str(instruction.amount_vnd))
    amount.set("Ccy", CURRENCY)
    _agent(transfer, "CdtrAgt", instruction.creditor.account)
    _party(transfer, "Cdtr", instruction.creditor)
    _account(transfer, "CdtrAcct", instruction.creditor.account, currency=False)
    _add(_add(transfer, "RmtInf"), "Ustrd", instruction.remittance)


def _party(parent: etree._Element, name: str, party: Party) -> None:
    _add(_add(parent, name), "Nm", party.name)


def _account(parent: etree._Element, name: str, account: BankAccount, *, currency: bool) -> None:
    """`CashAccount38`: an IBAN, or the bank's own number under `Othr`; the debtor's account
    also names its currency, so a bank refuses a file drawn on an account in another one."""
    element = _add(parent, name)
    identification = _add(element, "Id")
    if account.kind is AccountKind.IBAN:
        _add(identification, "IBAN", account.number)
    else:
        _add(_add(identification, "Othr"), "Id", account.number)
    if currency:
        _add(element, "Ccy", CURRENCY)


def _agent(parent: etree._Element, name: str, account: BankAccount) -> None:
    _add(_add(_add(parent, name), "FinInstnId"), "BICFI", account.bic)


def _add(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    # `Element` and `append` rather than `SubElement`, whose overloads the lxml stub packages
    # type differently.
    element = etree.Element(_tag(name))
    parent.append(element)
    if text is not None:
        element.text = text
    return element


def _tag(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"
