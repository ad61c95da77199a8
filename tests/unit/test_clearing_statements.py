"""Bank statements: the golden camt.053 files (valid against ISO's schemas) confirm, miss and
differ from a cycle's payouts; the readers refuse fractional dong, other currencies, oversized
and hostile XML (XXE, entity expansion), and name the line of a bad CSV row; and a camt.053
written from random entries reads back as those entries."""

from __future__ import annotations

import hashlib
from datetime import date
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from lxml.builder import ElementMaker

from clearing.adapters import camt053, statement_csv
from clearing.adapters.camt053 import read_camt053
from clearing.adapters.statement_csv import read_statement_csv
from clearing.domain import limits
from clearing.domain.statements import (
    BankStatement,
    Direction,
    DuplicatePayout,
    ExpectedPayout,
    ForeignCurrency,
    FractionalDong,
    InvalidStatement,
    StatementEntry,
    StatementTooLarge,
    StatementUnbalanced,
    match_payouts,
    parse_vnd,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "iso20022"
SCHEMA_SHA256 = {
    "camt.053.001.02.xsd": "05ec472590dda5e433fd646e9cf3849fa1ba01c033052aaca3089cec6862692d",
    "camt.053.001.08.xsd": "ca0b135cc8e2dde5b2f99af6b6c514a8f29d6e7c6cf98e9ea84d247189868ff5",
}
FIXTURES = {
    "camt053-v08-payouts-confirmed.xml": "08",
    "camt053-v08-payout-missing.xml": "08",
    "camt053-v02-batch.xml": "02",
}
DAY = date(2026, 12, 5)
PAYOUTS = (
    ExpectedPayout("TL-20261205-metro-hn", "metro-hn", 125_000_000),
    ExpectedPayout("TL-20261205-transerco", "transerco", 81_000_000),
    ExpectedPayout("TL-20261205-iparking", "iparking", 8_950_000),
)


@cache
def schema(version: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(DATA / f"camt.053.001.{version}.xsd")))


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def entry(
    e2e: str | None, amount_vnd: int, direction: Direction = Direction.DEBIT
) -> StatementEntry:
    return StatementEntry(DAY, amount_vnd, direction, e2e, bank_reference="FT1")


def statement(*entries: StatementEntry) -> BankStatement:
    return BankStatement("0451000123456", DAY, None, None, entries)


# --- the schemas and the golden files -------------------------------------------------------


@pytest.mark.parametrize(("name", "sha256"), SCHEMA_SHA256.items())
def test_schemas_are_the_copies_the_data_readme_names(name: str, sha256: str) -> None:
    assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == sha256


@pytest.mark.parametrize(("name", "version"), FIXTURES.items())
def test_golden_statements_are_valid_against_the_iso_schema(name: str, version: str) -> None:
    document = etree.parse(str(DATA / name))
    assert schema(version).validate(document), schema(version).error_log


def test_a_statement_booking_every_payout_confirms_the_cycle() -> None:
    read = read_camt053(fixture("camt053-v08-payouts-confirmed.xml"))
    assert (read.account_id, read.statement_date) == ("0451000123456", DAY)
    assert (read.opening_balance_vnd, read.closing_balance_vnd) == (1_000_000, 1_000_000)
    report = match_payouts(PAYOUTS, read)
    assert report.all_confirmed
    assert [payout for payout, _ in report.confirmed] == list(PAYOUTS)
    metro = report.confirmed[0][1]
    assert (metro.bank_reference, metro.counterparty_name, metro.counterparty_account) == (
        "FT26339000002",
        "HANOI METRO",
        "1903000111222",
    )
    # The funding credit (no end-to-end id: NOTPROVIDED) is the one entry no payout explains;
    # the pending transfer is not a booking and is not read at all.
    assert [(e.direction, e.amount_vnd, e.end_to_end_id) for e in report.unexpected] == [
        (Direction.CREDIT, 214_950_000, None)
    ]


def test_a_statement_missing_a_payout_and_booking_another_short_leaves_the_cycle_open() -> None:
    report = match_payouts(PAYOUTS, read_camt053(fixture("camt053-v08-payout-missing.xml")))
    assert not report.all_confirmed
    assert [payout.operator_id for payout, _ in report.confirmed] == ["metro-hn"]
    assert report.missing == (PAYOUTS[1],)
    (different,) = report.different
    assert different.payout == PAYOUTS[2]
    assert different.entry.amount_vnd == 8_900_000
    assert different.reason == "booked 8900000 VND, instructed 8950000 VND"


def test_a_version_02_batch_booking_is_read_as_one_entry_per_transaction() -> None:
    read = read_camt053(fixture("camt053-v02-batch.xml"))
    assert (read.opening_balance_vnd, read.closing_balance_vnd) == (-20_000, 30_000)
    assert read.statement_date == date(2026, 12, 6)
    debits = [e for e in read.entries if e.direction is Direction.DEBIT]
    assert [(e.end_to_end_id, e.amount_vnd, e.bank_reference) for e in debits] == [
        ("TL-20261206-metro-hn", 100_000_000, "0451-339-78-1"),
        ("TL-20261206-transerco", 50_000_000, "0451-339-78-2"),
    ]
    assert debits[0].counterparty_name == "HANOI METRO"


# --- the matcher ----------------------------------------------------------------------------


def test_a_payout_booked_as_a_credit_is_different_not_confirmed() -> None:
    report = match_payouts(
        PAYOUTS[:1], statement(entry(PAYOUTS[0].end_to_end_id, 125_000_000, Direction.CREDIT))
    )
    assert report.different[0].reason == "returned: a credit of 125000000 VND under its id"
    assert not report.confirmed
    assert not report.unexpected


def test_a_payout_booked_then_returned_is_different_not_confirmed() -> None:
    paid = entry(PAYOUTS[0].end_to_end_id, 125_000_000)
    returned = entry(PAYOUTS[0].end_to_end_id, 125_000_000, Direction.CREDIT)
    report = match_payouts(PAYOUTS[:1], statement(paid, returned))
    assert not report.all_confirmed
    assert report.different[0].entry == returned
    assert report.unexpected == ()


def test_entries_of_other_ids_or_no_id_are_unexpected() -> None:
    stray = entry("TL-19990101-nobody", 5)
    anonymous = entry(None, 7)
    report = match_payouts(PAYOUTS[:1], statement(stray, anonymous))
    assert report.missing == PAYOUTS[:1]
    assert report.unexpected == (stray, anonymous)


def test_a_second_booking_of_a_confirmed_payout_is_unexpected() -> None:
    twice = entry(PAYOUTS[0].end_to_end_id, 125_000_000)
    report = match_payouts(PAYOUTS[:1], statement(twice, twice))
    assert len(report.confirmed) == 1
    assert report.unexpected == (twice,)


def test_the_exact_booking_confirms_even_after_a_different_one_of_the_same_id() -> None:
    short = entry(PAYOUTS[0].end_to_end_id, 1)
    exact = entry(PAYOUTS[0].end_to_end_id, 125_000_000)
    report = match_payouts(PAYOUTS[:1], statement(short, exact))
    assert report.confirmed == ((PAYOUTS[0], exact),)
    assert report.unexpected == (short,)


def test_every_payout_is_missing_from_an_empty_statement() -> None:
    report = match_payouts(PAYOUTS, statement())
    assert report.missing == PAYOUTS
    assert not report.all_confirmed


def test_two_payouts_under_one_end_to_end_id_are_refused() -> None:
    with pytest.raises(DuplicatePayout):
        match_payouts([PAYOUTS[0], PAYOUTS[0]], statement())


def test_more_payouts_than_the_bound_are_refused() -> None:
    many = [ExpectedPayout(f"E{n}", "op", 1) for n in range(limits.PAYOUTS_MAX + 1)]
    with pytest.raises(StatementTooLarge):
        match_payouts(many, statement())


@settings(max_examples=200, deadline=None)
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=10**6), max_size=12),
    bookings=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=14),
            st.integers(min_value=1, max_value=10**6),
            st.sampled_from(Direction),
        ),
        max_size=20,
    ),
)
def test_every_payout_has_one_outcome_and_every_entry_at_most_one_payout(
    amounts: list[int], bookings: list[tuple[int, int, Direction]]
) -> None:
    payouts = [ExpectedPayout(f"E{n}", f"op{n}", amount) for n, amount in enumerate(amounts)]
    # Ids E0..E14: some are payouts', some are not; amounts are a payout's own or random.
    booked = [
        entry(f"E{n}", amounts[n] if n < len(amounts) and amount % 2 else amount, direction)
        for n, amount, direction in bookings
    ]
    report = match_payouts(payouts, statement(*booked))
    outcomes = (
        [payout for payout, _ in report.confirmed]
        + list(report.missing)
        + [difference.payout for difference in report.different]
    )
    assert sorted(outcomes, key=payouts.index) == payouts
    taken = [matched for _, matched in report.confirmed] + [d.entry for d in report.different]
    assert len(taken) + len(report.unexpected) <= len(booked)
    for payout, matched in report.confirmed:
        assert (matched.end_to_end_id, matched.amount_vnd) == (
            payout.end_to_end_id,
            payout.amount_vnd,
        )
        assert matched.direction is Direction.DEBIT
    assert report.all_confirmed == (len(report.confirmed) == len(payouts))


@pytest.mark.parametrize(
    "bad",
    [
        {"amount_vnd": 0},
        {"amount_vnd": -5},
        {"amount_vnd": limits.AMOUNT_MAX_VND + 1},
        {"end_to_end_id": ""},
        {"end_to_end_id": "x" * 36},
        {"counterparty_name": "bad\nname"},
    ],
)
def test_an_entry_out_of_bounds_is_refused(bad: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "booking_date": DAY,
        "amount_vnd": 1,
        "direction": Direction.DEBIT,
        "end_to_end_id": "E1",
    }
    with pytest.raises(InvalidStatement):
        StatementEntry(**{**fields, **bad})  # type: ignore[arg-type]


def test_balances_that_the_entries_do_not_explain_are_refused() -> None:
    with pytest.raises(StatementUnbalanced):
        BankStatement("0451", DAY, 0, 10, (entry("E1", 5, Direction.CREDIT),))


# --- amounts --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "vnd"), [("125000", 125_000), ("125000.00", 125_000), ("0.0", 0)])
def test_amounts_are_whole_dong_with_an_optional_zero_fraction(text: str, vnd: int) -> None:
    assert parse_vnd(text) == vnd


@pytest.mark.parametrize("text", ["125000.5", "125000.01", "1.00001"])
def test_a_fractional_dong_is_refused(text: str) -> None:
    with pytest.raises(FractionalDong):
        parse_vnd(text)


@pytest.mark.parametrize("text", ["", "-1", "+1", "1e5", "1,000", "1.", ".5", "1 000", "1" * 19])
def test_an_amount_that_is_not_plain_digits_is_refused(text: str) -> None:
    with pytest.raises(InvalidStatement):
        parse_vnd(text)


def test_a_camt053_date_not_written_yyyy_mm_dd_is_refused() -> None:
    data = fixture("camt053-v08-payouts-confirmed.xml").replace(
        b"<BookgDt><Dt>2026-12-05</Dt>", b"<BookgDt><Dt>20261205</Dt>", 1
    )
    with pytest.raises(InvalidStatement, match="YYYY-MM-DD"):
        read_camt053(data)


def test_a_fractional_dong_in_a_camt053_names_its_line() -> None:
    data = fixture("camt053-v08-payouts-confirmed.xml").replace(b">81000000<", b">81000000.50<")
    with pytest.raises(FractionalDong) as refused:
        read_camt053(data)
    assert refused.value.line is not None
    assert b"81000000.50" in data.splitlines()[refused.value.line - 1]


def test_an_amount_in_another_currency_is_refused() -> None:
    data = fixture("camt053-v08-payouts-confirmed.xml").replace(
        b'<Amt Ccy="VND">81000000', b'<Amt Ccy="USD">81000000'
    )
    with pytest.raises(ForeignCurrency):
        read_camt053(data)


def test_an_account_in_another_currency_is_refused() -> None:
    data = fixture("camt053-v08-payouts-confirmed.xml").replace(
        b"<Ccy>VND</Ccy>", b"<Ccy>EUR</Ccy>"
    )
    with pytest.raises(ForeignCurrency):
        read_camt053(data)


# --- hostile and malformed XML --------------------------------------------------------------

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><Stmt>
<Id>&secret;</Id></Stmt></BkToCstmrStmt></Document>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><Id>&lol3;</Id></Document>"""

REMOTE_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE Document SYSTEM "http://127.0.0.1:9/camt.dtd">
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"/>"""


@pytest.mark.parametrize("payload", [XXE, LAUGHS, REMOTE_DTD], ids=["xxe", "laughs", "remote-dtd"])
def test_a_document_with_a_doctype_is_refused_and_no_entity_is_expanded(payload: bytes) -> None:
    with pytest.raises(InvalidStatement) as refused:
        read_camt053(payload)
    assert "root:" not in str(refused.value)
    assert "DOCTYPE" in str(refused.value)


def test_malformed_xml_is_refused_with_its_line() -> None:
    with pytest.raises(InvalidStatement) as refused:
        read_camt053(b"<?xml version='1.0'?>\n<Document>\n<Stmt></Document>")
    assert refused.value.line == 3


@pytest.mark.parametrize(
    "namespace",
    [
        b"urn:iso:std:iso:20022:tech:xsd:camt.052.001.08",
        b"urn:iso:std:iso:20022:tech:xsd:camt.053.001.01",
        b"",
    ],
)
def test_a_document_other_than_camt053_002_and_later_is_refused(namespace: bytes) -> None:
    data = fixture("camt053-v08-payouts-confirmed.xml").replace(
        b"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08", namespace
    )
    with pytest.raises(InvalidStatement, match=r"camt\.053"):
        read_camt053(data)


def test_a_file_above_the_byte_bound_is_refused_before_parsing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "STATEMENT_BYTES_MAX", 100)
    with pytest.raises(StatementTooLarge):
        read_camt053(b" " * 101)
    with pytest.raises(StatementTooLarge):
        read_statement_csv(b" " * 101, account_id="A", statement_date=DAY)


def test_more_camt053_entries_than_the_bound_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "STATEMENT_ENTRIES_MAX", 4)
    with pytest.raises(StatementTooLarge):
        read_camt053(fixture("camt053-v08-payouts-confirmed.xml"))


def test_xml_nested_beyond_the_bound_is_refused() -> None:
    depth = limits.STATEMENT_XML_DEPTH_MAX
    data = (
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
        + b"<a>" * depth
        + b"</a>" * depth
        + b"</Document>"
    )
    with pytest.raises(StatementTooLarge):
        read_camt053(data)


def test_a_statement_whose_entries_do_not_reach_its_closing_balance_is_refused() -> None:
    data = fixture("camt053-v08-payouts-confirmed.xml").replace(b">1000000.00<", b">1000001<")
    with pytest.raises(StatementUnbalanced):
        read_camt053(data)


def test_an_account_is_chosen_among_several_statements() -> None:
    one = fixture("camt053-v08-payouts-confirmed.xml")
    start, end = one.index(b"<Stmt>"), one.index(b"</Stmt>") + len(b"</Stmt>")
    other = one[start:end].replace(b"0451000123456", b"0451000777777")
    both = one[:end] + other + one[end:]
    with pytest.raises(InvalidStatement, match="2 statements"):
        read_camt053(both)
    assert read_camt053(both, account_id="0451000777777").account_id == "0451000777777"
    with pytest.raises(InvalidStatement, match="0 statements"):
        read_camt053(both, account_id="nope")


# --- the CSV fallback -----------------------------------------------------------------------

HEADER = ",".join(statement_csv.COLUMNS)


def csv_file(*rows: str) -> bytes:
    return "\n".join([HEADER, *rows]).encode()


def test_a_csv_statement_confirms_the_same_payouts() -> None:
    data = csv_file(
        "2026-12-05,,214950000,CRDT,TAPLEDGER COLLECTION,0451000999999,FT26339000001",
        "2026-12-05,TL-20261205-metro-hn,125000000.00,DBIT,HANOI METRO,1903000111222,FT2",
        '2026-12-05,TL-20261205-transerco,81000000,DBIT,"TRANSERCO, HA NOI",,FT3',
        "",
        "2026-12-05,TL-20261205-iparking,8950000,DBIT,,,",
    )
    read = read_statement_csv(data, account_id="0451000123456", statement_date=DAY)
    report = match_payouts(PAYOUTS, read)
    assert report.all_confirmed
    assert report.confirmed[1][1].counterparty_name == "TRANSERCO, HA NOI"
    assert report.confirmed[2][1].bank_reference is None
    assert len(report.unexpected) == 1


@pytest.mark.parametrize(
    ("bad_row", "error", "words"),
    [
        ("2026-13-05,E1,1000,DBIT,,,", InvalidStatement, "booking_date"),
        ("2026-W49-6,E1,1000,DBIT,,,", InvalidStatement, "booking_date"),
        ("20261205,E1,1000,DBIT,,,", InvalidStatement, "booking_date"),
        ("2026-12-05,E1,1000.5,DBIT,,,", FractionalDong, "minor unit"),
        ("2026-12-05,E1,-1000,DBIT,,,", InvalidStatement, "amount"),
        ("2026-12-05,E1,1000,DEBIT,,,", InvalidStatement, "direction"),
        ("2026-12-05,E1,1000,DBIT,,", InvalidStatement, "6 fields"),
        ('2026-12-05,E1,1000,DBIT,"open,,', InvalidStatement, "CSV"),
        ("2026-12-05," + "E" * 36 + ",1000,DBIT,,,", InvalidStatement, "end-to-end id"),
        ("2026-12-05,E1,1000,DBIT," + "x" * 2000 + ",,", StatementTooLarge, "line"),
    ],
)
def test_a_bad_csv_row_is_refused_naming_its_line(
    bad_row: str, error: type[InvalidStatement], words: str
) -> None:
    data = csv_file("2026-12-05,E0,1000,DBIT,,,", bad_row)
    with pytest.raises(error, match=words) as refused:
        read_statement_csv(data, account_id="A", statement_date=DAY)
    assert refused.value.line == 3
    assert str(refused.value).startswith("line 3: ")


def test_a_csv_without_the_header_is_refused_at_line_1() -> None:
    with pytest.raises(InvalidStatement) as refused:
        read_statement_csv(b"date,id,amount\n", account_id="A", statement_date=DAY)
    assert refused.value.line == 1


def test_a_csv_that_is_not_utf8_names_the_line() -> None:
    data = csv_file("2026-12-05,E0,1000,DBIT,,,") + b"\n2026-12-05,E1,1000,DBIT,H\xe0 N\xf4i,,"
    with pytest.raises(InvalidStatement, match="UTF-8") as refused:
        read_statement_csv(data, account_id="A", statement_date=DAY)
    assert refused.value.line == 3


def test_more_csv_rows_than_the_bound_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "STATEMENT_ENTRIES_MAX", 2)
    with pytest.raises(StatementTooLarge) as refused:
        read_statement_csv(
            csv_file(*["2026-12-05,E,1,DBIT,,,"] * 3), account_id="A", statement_date=DAY
        )
    assert refused.value.line == 4


# --- round trip: a camt.053 written from random entries reads back as them ---------------------

TEXT = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij0123456789-/ .ÀàĐđộư", min_size=1, max_size=35
)
IDS = TEXT.map(str.strip).filter(lambda text: bool(text) and text != camt053.NOT_PROVIDED)


def amount_text(amount_vnd: int, with_fraction: bool) -> str:
    return f"{amount_vnd}.00" if with_fraction else str(amount_vnd)


def maker(version: str) -> ElementMaker:
    return ElementMaker(namespace=f"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}")


def balance(E: ElementMaker, code: str, amount_vnd: int) -> etree._Element:  # noqa: N803
    return E.Bal(
        E.Tp(E.CdOrPrtry(E.Cd(code))),
        E.Amt(str(abs(amount_vnd)), Ccy="VND"),
        E.CdtDbtInd("DBIT" if amount_vnd < 0 else "CRDT"),
        E.Dt(E.Dt(DAY.isoformat())),
    )


def ntry(version: str, item: StatementEntry, with_fraction: bool) -> etree._Element:
    """One booked entry as the version writes it: 001.02 names a party directly and its status
    is a bare code; 001.08 wraps the party in `Pty` and the status in `Cd`."""
    E = maker(version)  # noqa: N806
    party, account = (
        ("Cdtr", "CdtrAcct") if item.direction is Direction.DEBIT else ("Dbtr", "DbtrAcct")
    )
    related = []
    if item.counterparty_name is not None:
        name = E.Nm(item.counterparty_name)
        related.append(E(party, name) if version == "02" else E(party, E.Pty(name)))
    if item.counterparty_account is not None:
        related.append(E(account, E.Id(E.Othr(E.Id(item.counterparty_account)))))
    references = [E.EndToEndId(item.end_to_end_id or camt053.NOT_PROVIDED)]
    details = E.TxDtls(E.Refs(*references), *([E.RltdPties(*related)] if related else []))
    return E.Ntry(
        E.Amt(amount_text(item.amount_vnd, with_fraction), Ccy="VND"),
        E.CdtDbtInd(item.direction.value),
        E.Sts("BOOK") if version == "02" else E.Sts(E.Cd("BOOK")),
        E.BookgDt(E.Dt(item.booking_date.isoformat())),
        *([E.AcctSvcrRef(item.bank_reference)] if item.bank_reference else []),
        E.BkTxCd(E.Prtry(E.Cd("TRF"))),
        E.NtryDtls(details),
    )


def camt053_document(version: str, read: BankStatement, fractions: list[bool]) -> bytes:
    E = maker(version)  # noqa: N806
    assert read.opening_balance_vnd is not None
    assert read.closing_balance_vnd is not None
    document = E.Document(
        E.BkToCstmrStmt(
            E.GrpHdr(E.MsgId("GEN-1"), E.CreDtTm("2026-12-05T23:00:00")),
            E.Stmt(
                E.Id("GEN-STMT-1"),
                E.CreDtTm("2026-12-05T23:00:00"),
                E.Acct(E.Id(E.Othr(E.Id(read.account_id))), E.Ccy("VND")),
                balance(E, "OPBD", read.opening_balance_vnd),
                balance(E, "CLBD", read.closing_balance_vnd),
                *(
                    ntry(version, item, with_fraction)
                    for item, with_fraction in zip(read.entries, fractions, strict=True)
                ),
            ),
        )
    )
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8")


entries = st.builds(
    StatementEntry,
    booking_date=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    amount_vnd=st.integers(min_value=1, max_value=10**10),
    direction=st.sampled_from(Direction),
    end_to_end_id=st.none() | IDS,
    bank_reference=st.none() | IDS,
    counterparty_name=st.none() | IDS,
    counterparty_account=st.none() | st.from_regex(r"[0-9A-Z]{1,34}", fullmatch=True),
)


@pytest.mark.parametrize("version", ["02", "08"])
@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(entries, max_size=30),
    opening_vnd=st.integers(min_value=-(10**12), max_value=10**12),
    data=st.data(),
)
def test_a_generated_camt053_reads_back_as_its_entries(
    version: str, items: list[StatementEntry], opening_vnd: int, data: st.DataObject
) -> None:
    closing_vnd = opening_vnd + sum(item.signed_vnd for item in items)
    written = BankStatement("0451000123456", DAY, opening_vnd, closing_vnd, tuple(items))
    fractions = data.draw(st.lists(st.booleans(), min_size=len(items), max_size=len(items)))
    document = camt053_document(version, written, fractions)
    assert schema(version).validate(etree.fromstring(document)), schema(version).error_log
    assert read_camt053(document) == written
