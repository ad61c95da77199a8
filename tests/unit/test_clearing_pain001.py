"""Settlement instructions as ISO 20022 pain.001.001.09: every file the tests write is valid
against the official XSD (tests/data/iso20022), amounts are whole dong, the counts and control
sums match, the same batch gives the same bytes, ids come from the cycle, and bad input is a
typed error before any XML is written."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from clearing.adapters.pain001 import NAMESPACE, write_pain001
from clearing.domain import limits
from clearing.domain.bank_accounts import AccountKind, BankAccount, Party
from clearing.domain.errors import (
    InvalidAmount,
    InvalidBankDetails,
    InvalidPaymentId,
    InvalidPayout,
    TooManyParts,
)
from clearing.domain.payouts import (
    PaymentInstruction,
    PayoutBatch,
    cycle_batch,
    day_of_end_to_end_id,
    end_to_end_id,
    message_id,
)
from tests.vectors import DATA_DIR

XSD_PATH = DATA_DIR / "iso20022" / "pain.001.001.09.xsd"
# As noted in tests/data/README.md: the file is the reference, never edited to fit the code.
XSD_SHA256 = "05440a7e84f695e7dbc6677082f43623cd7393881b76a5e8d648ae21d7d728e3"
SCHEMA = etree.XMLSchema(etree.parse(str(XSD_PATH)))
NS = {"p": NAMESPACE}
EXAMPLES = settings(max_examples=150, deadline=None)

CYCLE_DATE = date(2026, 12, 6)
# The cut-off at midnight in Hanoi, 17:00 UTC.
CLOSED_AT = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
SCHEME = Party("TapLedger Clearing JSC", BankAccount("0011001234567", "BFTVVNVX"))
METRO = Party(
    "Hanoi Metro Company", BankAccount("DE89370400440532013000", "COBADEFF", AccountKind.IBAN)
)
BUS = Party("Công ty Xe buýt Hà Nội", BankAccount("123456789", "ICBVVNVX"))


def demo_batch(**changes: object) -> PayoutBatch:
    arguments: dict[str, object] = {
        "cycle_date": CYCLE_DATE,
        "cycle_seq": 42,
        "created_at": CLOSED_AT,
        "execution_date": date(2026, 12, 7),
        "debtor": SCHEME,
        "payees": [("hanoi-metro", METRO, 11_143), ("hanoi-bus", BUS, 125_000)],
    }
    return cycle_batch(**{**arguments, **changes})  # type: ignore[arg-type]


def valid(document: bytes) -> etree._Element:
    root = etree.fromstring(document)
    assert SCHEMA.validate(root), SCHEMA.error_log
    return root


def texts(root: etree._Element, path: str) -> list[str]:
    return [str(element.text) for element in root.iterfind(path, NS)]


def test_the_xsd_is_the_copied_file_unchanged() -> None:
    assert hashlib.sha256(XSD_PATH.read_bytes()).hexdigest() == XSD_SHA256


def test_a_cycle_batch_is_valid_against_the_xsd() -> None:
    root = valid(write_pain001(demo_batch()))
    assert texts(root, ".//p:GrpHdr/p:MsgId") == ["TL-20261206-000042"]
    assert texts(root, ".//p:GrpHdr/p:CreDtTm") == ["2026-12-07T00:00:00+07:00"]
    assert texts(root, ".//p:PmtInf/p:PmtMtd") == ["TRF"]
    assert texts(root, ".//p:ReqdExctnDt/p:Dt") == ["2026-12-07"]
    assert texts(root, ".//p:DbtrAcct//p:Othr/p:Id") == ["0011001234567"]
    assert texts(root, ".//p:DbtrAgt//p:BICFI") == ["BFTVVNVX"]
    # Payments in operator-id order, each with its bank, its name and its account.
    assert texts(root, ".//p:Cdtr/p:Nm") == ["Công ty Xe buýt Hà Nội", "Hanoi Metro Company"]
    assert texts(root, ".//p:CdtrAgt//p:BICFI") == ["ICBVVNVX", "COBADEFF"]
    assert texts(root, ".//p:CdtrAcct//p:Othr/p:Id") == ["123456789"]
    assert texts(root, ".//p:CdtrAcct//p:IBAN") == ["DE89370400440532013000"]
    assert texts(root, ".//p:RmtInf/p:Ustrd") == [
        "TapLedger settlement 2026-12-06 hanoi-bus",
        "TapLedger settlement 2026-12-06 hanoi-metro",
    ]


def test_the_schema_refuses_a_broken_file_so_the_validation_is_live() -> None:
    root = etree.fromstring(write_pain001(demo_batch()))
    header = root.find(".//p:GrpHdr", NS)
    assert header is not None
    header.remove(header[0])  # MsgId, which the schema requires
    assert not SCHEMA.validate(root)


def test_amounts_are_whole_dong_without_decimals() -> None:
    root = valid(write_pain001(demo_batch()))
    assert texts(root, ".//p:InstdAmt") == ["125000", "11143"]
    assert {element.get("Ccy") for element in root.iterfind(".//p:InstdAmt", NS)} == {"VND"}
    assert texts(root, ".//p:CtrlSum") == ["136143", "136143"]


def test_counts_and_control_sums_match_the_payments() -> None:
    root = valid(write_pain001(demo_batch()))
    amounts = [int(amount) for amount in texts(root, ".//p:InstdAmt")]
    assert texts(root, "p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs") == [str(len(amounts))]
    assert texts(root, "p:CstmrCdtTrfInitn/p:PmtInf/p:NbOfTxs") == [str(len(amounts))]
    assert texts(root, ".//p:CtrlSum") == [str(sum(amounts))] * 2


def test_the_same_batch_gives_byte_identical_files() -> None:
    first = write_pain001(demo_batch())
    assert write_pain001(demo_batch()) == first
    # A re-run lists the payees in another order and reads the instant in another zone.
    hanoi = timezone(timedelta(hours=7))
    rerun = demo_batch(
        payees=[("hanoi-bus", BUS, 125_000), ("hanoi-metro", METRO, 11_143)],
        created_at=CLOSED_AT.astimezone(hanoi),
    )
    assert write_pain001(rerun) == first


def test_the_file_is_utf8_with_the_default_namespace_and_no_prefix() -> None:
    document = write_pain001(demo_batch())
    assert document.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<Document xmlns=")
    assert "Công ty Xe buýt Hà Nội".encode() in document
    assert b"ns0:" not in document
    assert document.endswith(b"</Document>\n")


def test_ids_are_derived_from_the_cycle() -> None:
    batch = demo_batch()
    assert batch.message_id == message_id(CYCLE_DATE, 42) == "TL-20261206-000042"
    assert [instruction.end_to_end_id for instruction in batch.instructions] == [
        "TL-20261206-hanoi-bus",
        "TL-20261206-hanoi-metro",
    ]
    # A re-run a day later (another creation instant) keeps every id: a resend is a duplicate.
    rerun = demo_batch(created_at=CLOSED_AT + timedelta(days=1))
    assert rerun.message_id == batch.message_id
    assert rerun.instructions == batch.instructions
    next_day = demo_batch(cycle_date=date(2026, 12, 7), cycle_seq=43)
    assert next_day.message_id == "TL-20261207-000043"
    assert next_day.instructions[0].end_to_end_id == "TL-20261207-hanoi-bus"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"payees": [("hanoi-bus", BUS, 0)]}, InvalidAmount),
        ({"payees": [("hanoi-bus", BUS, -125_000)]}, InvalidAmount),
        ({"payees": [("hanoi-bus", BUS, True)]}, InvalidAmount),
        ({"payees": [("hanoi-bus", BUS, limits.AMOUNT_MAX_VND + 1)]}, InvalidAmount),
        # Two payments, each within bounds, whose total is not.
        (
            {"payees": [("a", BUS, limits.AMOUNT_MAX_VND), ("b", BUS, 1)]},
            InvalidAmount,
        ),
        # 24 characters of operator id make a 36-character end-to-end id.
        ({"payees": [("x" * 24, BUS, 1)]}, InvalidPaymentId),
        ({"payees": [("hanoi bus", BUS, 1)]}, InvalidPaymentId),
        ({"payees": [("hanoi_bus", BUS, 1)]}, InvalidPaymentId),
        ({"cycle_seq": 0}, InvalidPaymentId),
        ({"cycle_seq": limits.CYCLE_SEQ_MAX + 1}, InvalidPaymentId),
        ({"cycle_seq": True}, InvalidPaymentId),
        ({"payees": []}, InvalidPayout),
        ({"payees": [("hanoi-bus", BUS, 1), ("hanoi-bus", BUS, 2)]}, InvalidPayout),
        ({"created_at": datetime(2026, 12, 7)}, InvalidPayout),
        ({"execution_date": date(2026, 12, 5)}, InvalidPayout),
        (
            {"payees": [(f"op{n}", BUS, 1) for n in range(limits.PAYOUTS_MAX + 1)]},
            TooManyParts,
        ),
    ],
)
def test_a_batch_that_cannot_be_sent_is_a_typed_error(
    changes: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        demo_batch(**changes)


@pytest.mark.parametrize("payment_id", ["T" * 36, "", "TL 1", "TL-1\n", "TL-Hà-Nội"])
def test_an_id_a_bank_would_refuse_is_a_typed_error(payment_id: str) -> None:
    with pytest.raises(InvalidPaymentId):
        PaymentInstruction("hanoi-bus", BUS, 1, payment_id, "settlement")
    with pytest.raises(InvalidPaymentId):
        PayoutBatch(payment_id, CLOSED_AT, CYCLE_DATE, SCHEME, demo_batch().instructions)


def test_an_id_of_exactly_35_characters_is_taken() -> None:
    assert len(end_to_end_id(CYCLE_DATE, "x" * 23)) == 35
    valid(write_pain001(demo_batch(payees=[("x" * 23, BUS, 1)])))


@pytest.mark.parametrize(
    ("number", "bic", "kind"),
    [
        ("0011001234567", "BFTVVN", AccountKind.LOCAL),  # a BIC of 6 characters
        ("0011001234567", "bftvvnvx", AccountKind.LOCAL),
        ("0011001234567", "BFTVVNVXX", AccountKind.LOCAL),  # 9 characters
        ("0011-0012", "BFTVVNVX", AccountKind.LOCAL),
        ("1" * 35, "BFTVVNVX", AccountKind.LOCAL),
        ("", "BFTVVNVX", AccountKind.LOCAL),
        ("DE89370400440532013001", "COBADEFF", AccountKind.IBAN),  # a slipped digit
        ("0011001234567", "COBADEFF", AccountKind.IBAN),
    ],
)
def test_bank_details_that_are_not_well_formed_are_a_typed_error(
    number: str, bic: str, kind: AccountKind
) -> None:
    with pytest.raises(InvalidBankDetails):
        BankAccount(number, bic, kind)


@pytest.mark.parametrize("name", ["", " padded", "x" * 141, "line\nbreak", "tab\there"])
def test_a_name_that_is_empty_too_long_or_not_printable_is_a_typed_error(name: str) -> None:
    with pytest.raises(InvalidPayout):
        Party(name, BankAccount("123456789", "ICBVVNVX"))


def iban(country: str, bban: str) -> str:
    """An IBAN with the right check digits (ISO 13616)."""
    digits = "".join(str(int(char, 36)) for char in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
bics = st.from_regex(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?", fullmatch=True)
local_accounts = st.builds(BankAccount, st.text(alnum, min_size=1, max_size=34), bics)
iban_accounts = st.builds(
    lambda country, bban, bic: BankAccount(iban(country, bban), bic, AccountKind.IBAN),
    st.from_regex(r"[A-Z]{2}", fullmatch=True),
    st.text(alnum.upper(), min_size=1, max_size=30),
    bics,
)
names = st.text(
    st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S")) | st.just(" "),
    min_size=1,
    max_size=limits.PARTY_NAME_MAX_CHARS,
).filter(lambda name: name.isprintable() and name == name.strip())
parties = st.builds(Party, names, local_accounts | iban_accounts)
operator_ids = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,22}", fullmatch=True)
payees = st.lists(
    st.tuples(operator_ids, parties, st.integers(1, limits.AMOUNT_MAX_VND // 50)),
    min_size=1,
    max_size=50,
    unique_by=lambda payee: payee[0],
)


@EXAMPLES
@given(
    payees=payees,
    debtor=parties,
    cycle_date=st.dates(date(2020, 1, 1), date(2099, 12, 31)),
    cycle_seq=st.integers(1, limits.CYCLE_SEQ_MAX),
    closed_at=st.datetimes(datetime(2020, 1, 1), datetime(2099, 12, 31), timezones=st.just(UTC)),
)
def test_every_random_batch_is_valid_and_its_control_sum_is_exact(
    payees: list[tuple[str, Party, int]],
    debtor: Party,
    cycle_date: date,
    cycle_seq: int,
    closed_at: datetime,
) -> None:
    batch = cycle_batch(
        cycle_date=cycle_date,
        cycle_seq=cycle_seq,
        created_at=closed_at,
        execution_date=cycle_date + timedelta(days=1),
        debtor=debtor,
        payees=payees,
    )
    document = write_pain001(batch)
    root = valid(document)
    total_vnd = sum(amount for _, _, amount in payees)
    assert texts(root, ".//p:CtrlSum") == [str(total_vnd)] * 2
    assert texts(root, ".//p:NbOfTxs") == [str(len(payees))] * 2
    amounts = texts(root, ".//p:InstdAmt")
    assert all(re.fullmatch(r"[1-9][0-9]*", amount) for amount in amounts)
    assert sum(int(amount) for amount in amounts) == total_vnd
    assert write_pain001(batch) == document


def test_an_end_to_end_id_names_its_cycles_day_and_no_other_id_does() -> None:
    day = date(2026, 12, 6)
    assert day_of_end_to_end_id(end_to_end_id(day, "hanoi-metro")) == day
    for other in (None, "", "TL-2026120-x", "TL-20261306-x", "XX-20261206-x", "TL-20261206x"):
        assert day_of_end_to_end_id(other) is None
