"""Operator reconciliation: an operator's transaction file against our clearing lines for it.

Each transaction id is matched, missing on one side or an amount mismatch, on the sum of each
side's lines; the operator's CSV is read whole or refused with every bad line named; the report
is the same bytes for the same lines in any order, and its totals add up."""

from __future__ import annotations

import csv
import io
import itertools
import random
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.adapters.reconciliation_csv import (
    parse_amount,
    parse_transaction_id,
    read_operator_file,
    write_report_csv,
)
from clearing.domain import limits
from clearing.domain.reconciliation import (
    FractionalDong,
    InvalidOperatorFile,
    InvalidReconciliationLine,
    OurLine,
    Outcome,
    ReconciliationTooLarge,
    TheirLine,
    Totals,
    reconcile,
)

BUS_JOURNEY = "a1" * 16
METRO_JOURNEY = "b2" * 16
REFUNDED_JOURNEY = "c3" * 16
PARKING_SESSION = "d4" * 16
HEADER = b"transaction_id,amount_vnd\n"


def their(*lines: tuple[str, int]) -> list[TheirLine]:
    """Their lines as a file would number them: the header is line 1."""
    return [TheirLine(n, tid, amount) for n, (tid, amount) in enumerate(lines, start=2)]


def operator_file(*rows: str, header: bytes = HEADER) -> bytes:
    return header + "".join(f"{row}\n" for row in rows).encode()


def refused(data: bytes) -> InvalidOperatorFile:
    with pytest.raises(InvalidOperatorFile) as caught:
        read_operator_file(data)
    return caught.value


# --- matching ---------------------------------------------------------------------------------


def test_equal_sums_of_one_transaction_id_match() -> None:
    report = reconcile([OurLine(BUS_JOURNEY, 8_000)], their((BUS_JOURNEY, 8_000)))

    (row,) = report.rows
    assert (row.outcome, row.our_vnd, row.their_vnd, row.difference_vnd) == (
        Outcome.MATCHED,
        8_000,
        8_000,
        0,
    )
    assert report.all_matched


def test_a_transaction_only_in_their_file_is_missing_in_ours() -> None:
    report = reconcile([], their((METRO_JOURNEY, 13_000)))

    (row,) = report.rows
    assert (row.outcome, row.our_vnd, row.their_vnd) == (Outcome.MISSING_IN_OURS, None, 13_000)
    assert row.difference_vnd == -13_000
    assert row.their_first_line == 2
    assert not report.all_matched


def test_a_transaction_only_in_ours_is_missing_in_theirs() -> None:
    report = reconcile([OurLine(PARKING_SESSION, 25_000)], [])

    (row,) = report.rows
    assert (row.outcome, row.our_vnd, row.their_vnd) == (Outcome.MISSING_IN_THEIRS, 25_000, None)
    assert (row.difference_vnd, row.their_first_line) == (25_000, None)


def test_different_sums_are_a_mismatch_showing_both_amounts_and_ours_minus_theirs() -> None:
    report = reconcile([OurLine(METRO_JOURNEY, 11_143)], their((METRO_JOURNEY, 13_000)))

    (row,) = report.rows
    assert (row.outcome, row.our_vnd, row.their_vnd, row.difference_vnd) == (
        Outcome.AMOUNT_MISMATCH,
        11_143,
        13_000,
        -1_857,
    )


def test_a_charge_and_its_refund_in_one_cycle_are_summed_before_matching() -> None:
    ours = [OurLine(REFUNDED_JOURNEY, 18_000), OurLine(REFUNDED_JOURNEY, -18_000)]

    netted = reconcile(ours, their((REFUNDED_JOURNEY, 0)))
    never_charged = reconcile(ours, [])

    assert netted.rows[0].outcome is Outcome.MATCHED
    assert (netted.rows[0].our_lines, netted.rows[0].their_lines) == (2, 1)
    # A line is evidence that the transaction exists, even when its lines net to 0.
    assert never_charged.rows[0].outcome is Outcome.MISSING_IN_THEIRS


def test_their_repeated_lines_are_summed_and_the_first_one_named() -> None:
    ours = [OurLine(PARKING_SESSION, 10_000), OurLine(PARKING_SESSION, 15_000)]
    lines = [TheirLine(7, PARKING_SESSION, 20_000), TheirLine(3, PARKING_SESSION, 5_000)]

    (row,) = reconcile(ours, lines).rows

    assert (row.outcome, row.our_vnd, row.their_vnd) == (Outcome.MATCHED, 25_000, 25_000)
    assert (row.their_lines, row.their_first_line) == (2, 3)


def test_rows_are_in_transaction_id_order_and_every_outcome_has_its_totals() -> None:
    ours = [OurLine(PARKING_SESSION, 1), OurLine(BUS_JOURNEY, 8_000), OurLine(METRO_JOURNEY, 5)]
    report = reconcile(ours, their((REFUNDED_JOURNEY, 9), (METRO_JOURNEY, 6), (BUS_JOURNEY, 8_000)))

    assert [row.transaction_id for row in report.rows] == sorted(
        [BUS_JOURNEY, METRO_JOURNEY, REFUNDED_JOURNEY, PARKING_SESSION]
    )
    assert [outcome for outcome, _ in report.by_outcome] == list(Outcome)
    assert report.totals(Outcome.MATCHED) == Totals(1, 8_000, 8_000, 1, 1)
    assert report.totals(Outcome.MISSING_IN_OURS) == Totals(1, 0, 9, 0, 1)
    assert report.totals(Outcome.MISSING_IN_THEIRS) == Totals(1, 1, 0, 1, 0)
    assert report.totals(Outcome.AMOUNT_MISMATCH) == Totals(1, 5, 6, 1, 1)
    assert (report.our_total_vnd, report.their_total_vnd, report.difference_vnd) == (
        8_006,
        8_015,
        -9,
    )


def test_nothing_on_either_side_is_an_empty_report_that_matches() -> None:
    report = reconcile([], [])

    assert report.rows == ()
    assert report.overall == Totals(0, 0, 0, 0, 0)
    assert report.all_matched


def test_more_lines_than_the_bound_are_refused_without_reading_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "RECONCILIATION_LINES_MAX", 3)
    endless = itertools.repeat(OurLine(BUS_JOURNEY, 1))

    with pytest.raises(ReconciliationTooLarge) as ours_refused:
        reconcile(endless, [])
    with pytest.raises(ReconciliationTooLarge):
        reconcile([], (TheirLine(n, BUS_JOURNEY, 1) for n in itertools.count(2)))

    assert ours_refused.value.code == "reconciliation_too_large"


@pytest.mark.parametrize(
    ("transaction_id", "amount_vnd"),
    [
        ("", 1),
        ("A1B2", 1),  # capitals are the adapter's to fold, not the domain's to guess
        ("journey:" + BUS_JOURNEY, 1),
        ("a" * (limits.TRANSACTION_ID_MAX_CHARS + 1), 1),
        (BUS_JOURNEY, limits.AMOUNT_MAX_VND + 1),
        (BUS_JOURNEY, -limits.AMOUNT_MAX_VND - 1),
        (BUS_JOURNEY, True),
        (BUS_JOURNEY, 1.0),
    ],
)
def test_a_line_with_a_bad_id_or_amount_is_refused(transaction_id: str, amount_vnd: int) -> None:
    with pytest.raises(InvalidReconciliationLine) as ours:
        OurLine(transaction_id, amount_vnd)
    with pytest.raises(InvalidReconciliationLine):
        TheirLine(2, transaction_id, amount_vnd)

    assert ours.value.code == "reconciliation_line_invalid"


def test_their_line_numbers_start_at_1() -> None:
    with pytest.raises(InvalidReconciliationLine):
        TheirLine(0, BUS_JOURNEY, 1)


# --- reading the operator's file --------------------------------------------------------------


def test_reads_a_file_with_the_optional_columns_in_any_order() -> None:
    data = operator_file(
        f'2026-12-05,"Bus 32, Cau Giay",8000,{BUS_JOURNEY}',
        f",,-18000,{REFUNDED_JOURNEY}",
        header=b"business_date,description,amount_vnd,transaction_id\n",
    )

    assert read_operator_file(data) == [
        TheirLine(2, BUS_JOURNEY, 8_000),
        TheirLine(3, REFUNDED_JOURNEY, -18_000),
    ]


def test_a_byte_order_mark_crlf_line_ends_and_blank_lines_are_read() -> None:
    data = b"\xef\xbb\xbftransaction_id,amount_vnd\r\n\r\n" + f"{BUS_JOURNEY},8000\r\n".encode()

    assert read_operator_file(data) == [TheirLine(3, BUS_JOURNEY, 8_000)]


def test_a_header_alone_is_a_file_of_no_lines() -> None:
    assert read_operator_file(HEADER) == []
    assert read_operator_file(b"transaction_id,amount_vnd") == []


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "a header line is required"),
        (b"\n" + HEADER, "a header line is required"),
        (b"transaction_id,amount\n", "unknown column 'amount'"),
        (b"transaction_id\n", "no 'amount_vnd' column"),
        (b"transaction_id,amount_vnd,amount_vnd\n", "column 'amount_vnd' twice"),
        (b"transaction_id;amount_vnd\n", "columns are separated by commas"),
        (b"transaction_id,\xffamount_vnd\n", "not UTF-8"),
    ],
)
def test_a_missing_or_wrong_header_refuses_the_file_at_line_1(data: bytes, says: str) -> None:
    error = refused(data)

    assert error.code == "reconciliation_file_invalid"
    assert [problem.line_no for problem in error.problems] == [1]
    assert says in str(error)


@pytest.mark.parametrize(
    ("text", "amount_vnd"),
    [
        ("125000", 125_000),
        ("-18000", -18_000),
        ("0", 0),
        ("125000.00", 125_000),
        ("125000.0", 125_000),
        (str(limits.AMOUNT_MAX_VND), limits.AMOUNT_MAX_VND),
    ],
)
def test_amounts_are_whole_dong_with_an_optional_minus(text: str, amount_vnd: int) -> None:
    assert parse_amount(text) == amount_vnd


@pytest.mark.parametrize("text", ["125000.50", "1.5", "-0.01"])
def test_a_fraction_of_a_dong_is_refused_never_rounded(text: str) -> None:
    with pytest.raises(FractionalDong) as caught:
        parse_amount(text)

    assert caught.value.code == "reconciliation_fractional_dong"


@pytest.mark.parametrize("text", ["125,000", "125.000", "1.250.000", "-1,250,000.00"])
def test_a_thousands_separator_is_refused_as_ambiguous(text: str) -> None:
    with pytest.raises(InvalidReconciliationLine, match="without separators"):
        parse_amount(text)


@pytest.mark.parametrize(
    "text", ["", "+5", "1e5", "12 000", "125000.000", "VND 5", str(limits.AMOUNT_MAX_VND + 1)]
)
def test_an_amount_that_is_not_whole_dong_is_refused(text: str) -> None:
    with pytest.raises(InvalidReconciliationLine):
        parse_amount(text)


def test_ids_in_capitals_or_as_a_hyphenated_uuid_are_read_as_our_hex() -> None:
    journey_id = uuid.UUID(BUS_JOURNEY)

    assert parse_transaction_id(BUS_JOURNEY.upper()) == BUS_JOURNEY
    assert parse_transaction_id(str(journey_id)) == BUS_JOURNEY
    assert parse_transaction_id(str(journey_id).upper()) == BUS_JOURNEY


@pytest.mark.parametrize(
    "text", ["", "journey:" + BUS_JOURNEY, "g" * 32, "{" + BUS_JOURNEY + "}", "a" * 65]
)
def test_an_id_that_is_not_one_of_ours_is_refused(text: str) -> None:
    with pytest.raises(InvalidReconciliationLine, match="transaction id"):
        parse_transaction_id(text)


def test_every_bad_line_is_named_by_number_and_column_and_the_file_refused_whole() -> None:
    data = operator_file(
        f"{BUS_JOURNEY},8000",
        f"{METRO_JOURNEY},125.000",
        "",
        "not-an-id,1.5",
        f"{PARKING_SESSION}",
        f"{PARKING_SESSION},25000",
    )

    error = refused(data)

    assert [(p.line_no, p.column, p.code) for p in error.problems] == [
        (3, "amount_vnd", "reconciliation_line_invalid"),
        (5, "transaction_id", "reconciliation_line_invalid"),
        (5, "amount_vnd", "reconciliation_fractional_dong"),
        (6, None, "reconciliation_line_invalid"),
    ]
    assert error.problems_total == 4
    assert str(error).startswith("the file is refused, 4 problem(s): line 3, amount_vnd: ")


@pytest.mark.parametrize(
    ("row", "column", "says"),
    [
        (b"%b,5,2026-02-30,", "business_date", "no such date"),
        (b"%b,5,05/12/2026,", "business_date", "YYYY-MM-DD"),
        (b"%b,5,,%b", "description", "at most 200 characters"),
        (b"%b,5,,\xc3(", None, "not UTF-8"),
        (b'%b,5,,"unclosed', None, "not a CSV line"),
        (b"%b,5,,%b" + b"x" * 1_024, None, "longer than 1024 characters"),
    ],
)
def test_a_bad_date_description_or_line_is_named(row: bytes, column: str | None, says: str) -> None:
    line = row.replace(b"%b", BUS_JOURNEY.encode(), 1).replace(b"%b", b"d" * 201)
    header = b"transaction_id,amount_vnd,business_date,description\n"

    (problem,) = refused(header + line + b"\n").problems

    assert (problem.line_no, problem.column) == (2, column)
    assert says in problem.reason


def test_the_problems_listed_are_bounded_but_every_one_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "RECONCILIATION_PROBLEMS_MAX", 3)

    error = refused(operator_file(*(f"{BUS_JOURNEY},{n}.5" for n in range(10))))

    assert [problem.line_no for problem in error.problems] == [2, 3, 4]
    assert error.problems_total == 10
    assert str(error).endswith("; and 7 more")


def test_a_file_beyond_the_byte_bound_is_refused_before_it_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "RECONCILIATION_FILE_BYTES_MAX", 64)

    with pytest.raises(ReconciliationTooLarge, match="at most 64"):
        read_operator_file(HEADER + b"\xff" * 64)


def test_a_file_of_more_lines_than_the_bound_is_refused_naming_the_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "RECONCILIATION_LINES_MAX", 2)
    three = operator_file(*[f"{BUS_JOURNEY},1"] * 3)

    assert len(read_operator_file(operator_file(*[f"{BUS_JOURNEY},1"] * 2))) == 2
    with pytest.raises(ReconciliationTooLarge, match="line 4: more than 2 lines"):
        read_operator_file(three)


# --- the report -------------------------------------------------------------------------------


def test_the_report_is_one_table_of_transactions_then_totals() -> None:
    ours = [OurLine(BUS_JOURNEY, 8_000), OurLine(METRO_JOURNEY, 11_143)]
    ours += [OurLine(PARKING_SESSION, 10_000), OurLine(PARKING_SESSION, 15_000)]
    theirs = their((METRO_JOURNEY, 13_000), (REFUNDED_JOURNEY, 0), (BUS_JOURNEY, 8_000))

    written = write_report_csv(reconcile(ours, theirs))

    assert written == (
        b"kind,transaction_id,outcome,transactions,our_vnd,their_vnd,difference_vnd,"
        b"our_lines,their_lines,their_first_line\n"
        b"transaction,%(bus)s,matched,1,8000,8000,0,1,1,4\n"
        b"transaction,%(metro)s,amount_mismatch,1,11143,13000,-1857,1,1,2\n"
        b"transaction,%(refunded)s,missing_in_ours,1,,0,0,0,1,3\n"
        b"transaction,%(parking)s,missing_in_theirs,1,25000,,25000,2,0,\n"
        b"total,,matched,1,8000,8000,0,1,1,\n"
        b"total,,missing_in_ours,1,0,0,0,0,1,\n"
        b"total,,missing_in_theirs,1,25000,0,25000,2,0,\n"
        b"total,,amount_mismatch,1,11143,13000,-1857,1,1,\n"
        b"total,,all,4,44143,21000,23143,4,3,\n"
    ) % {
        b"bus": BUS_JOURNEY.encode(),
        b"metro": METRO_JOURNEY.encode(),
        b"refunded": REFUNDED_JOURNEY.encode(),
        b"parking": PARKING_SESSION.encode(),
    }


def test_an_uploaded_file_reconciled_twice_writes_the_same_bytes() -> None:
    upload = operator_file(f"{METRO_JOURNEY},13000", f"{BUS_JOURNEY},8000", f"{BUS_JOURNEY},-5")
    ours = [OurLine(BUS_JOURNEY, 7_995), OurLine(PARKING_SESSION, 1)]

    first = write_report_csv(reconcile(ours, read_operator_file(upload)))
    second = write_report_csv(reconcile(list(ours), read_operator_file(bytes(upload))))

    assert first == second
    assert b"\r" not in first
    assert first.endswith(b"total,,all,3,7996,20995,-12999,2,3,\n")


# --- properties -------------------------------------------------------------------------------

# A few ids, so the two sides share some, and small amounts, so equal sums are common.
IDS = [f"{n:032x}" for n in (1, 2, 3, 0xABC, 0xFFFF)] + ["5", "5a"]
lines_strategy = st.lists(
    st.tuples(st.sampled_from(IDS), st.integers(min_value=-3, max_value=3)), max_size=25
)


def sides(
    ours_drawn: list[tuple[str, int]], theirs_drawn: list[tuple[str, int]]
) -> tuple[list[OurLine], list[TheirLine]]:
    return [OurLine(tid, amount) for tid, amount in ours_drawn], their(*theirs_drawn)


def sums(drawn: list[tuple[str, int]]) -> dict[str, int]:
    summed: dict[str, int] = {}
    for tid, amount in drawn:
        summed[tid] = summed.get(tid, 0) + amount
    return summed


@settings(max_examples=300, deadline=None)
@given(ours_drawn=lines_strategy, theirs_drawn=lines_strategy)
def test_every_transaction_id_lands_in_exactly_one_outcome(
    ours_drawn: list[tuple[str, int]], theirs_drawn: list[tuple[str, int]]
) -> None:
    report = reconcile(*sides(ours_drawn, theirs_drawn))

    ids = [row.transaction_id for row in report.rows]
    assert ids == sorted({tid for tid, _ in ours_drawn + theirs_drawn})
    by_outcome = {outcome: report.rows_of(outcome) for outcome in Outcome}
    assert sum(len(rows) for rows in by_outcome.values()) == len(ids)
    for outcome, rows in by_outcome.items():
        assert report.totals(outcome).transactions == len(rows)


@settings(max_examples=300, deadline=None)
@given(ours_drawn=lines_strategy, theirs_drawn=lines_strategy)
def test_our_total_minus_theirs_is_the_sum_of_the_differences(
    ours_drawn: list[tuple[str, int]], theirs_drawn: list[tuple[str, int]]
) -> None:
    report = reconcile(*sides(ours_drawn, theirs_drawn))

    our_total = sum(amount for _, amount in ours_drawn)
    their_total = sum(amount for _, amount in theirs_drawn)
    assert (report.our_total_vnd, report.their_total_vnd) == (our_total, their_total)
    assert our_total - their_total == sum(row.difference_vnd for row in report.rows)
    assert report.difference_vnd == sum(totals.difference_vnd for _, totals in report.by_outcome)
    assert (report.overall.our_lines, report.overall.their_lines) == (
        len(ours_drawn),
        len(theirs_drawn),
    )


@settings(max_examples=300, deadline=None)
@given(ours_drawn=lines_strategy, theirs_drawn=lines_strategy)
def test_an_id_matches_exactly_when_both_sides_have_it_with_equal_sums(
    ours_drawn: list[tuple[str, int]], theirs_drawn: list[tuple[str, int]]
) -> None:
    report = reconcile(*sides(ours_drawn, theirs_drawn))
    our_sums, their_sums = sums(ours_drawn), sums(theirs_drawn)

    for row in report.rows:
        both = row.transaction_id in our_sums and row.transaction_id in their_sums
        equal = our_sums.get(row.transaction_id) == their_sums.get(row.transaction_id)
        assert (row.outcome is Outcome.MATCHED) == (both and equal)
        assert (row.outcome is Outcome.AMOUNT_MISMATCH) == (both and not equal)
        assert (row.our_vnd, row.their_vnd) == (
            our_sums.get(row.transaction_id),
            their_sums.get(row.transaction_id),
        )


@settings(max_examples=200, deadline=None)
@given(ours_drawn=lines_strategy, theirs_drawn=lines_strategy, seed=st.randoms())
def test_shuffling_either_side_writes_a_byte_identical_report(
    ours_drawn: list[tuple[str, int]], theirs_drawn: list[tuple[str, int]], seed: random.Random
) -> None:
    ours, theirs = sides(ours_drawn, theirs_drawn)
    shuffled_ours, shuffled_theirs = list(ours), list(theirs)
    seed.shuffle(shuffled_ours)
    seed.shuffle(shuffled_theirs)

    written = write_report_csv(reconcile(ours, theirs))

    assert write_report_csv(reconcile(shuffled_ours, shuffled_theirs)) == written
    assert write_report_csv(reconcile(shuffled_ours, theirs)) == written


@settings(max_examples=200, deadline=None)
@given(ours_drawn=lines_strategy, theirs_drawn=lines_strategy)
def test_the_written_totals_are_the_sums_of_the_written_rows(
    ours_drawn: list[tuple[str, int]], theirs_drawn: list[tuple[str, int]]
) -> None:
    table = list(
        csv.DictReader(
            io.StringIO(write_report_csv(reconcile(*sides(ours_drawn, theirs_drawn))).decode())
        )
    )
    details = [row for row in table if row["kind"] == "transaction"]
    totals = {row["outcome"]: row for row in table if row["kind"] == "total"}

    assert list(totals) == [*Outcome, "all"]
    for outcome, total in totals.items():
        mine = [row for row in details if outcome in ("all", row["outcome"])]
        assert int(total["transactions"]) == len(mine)
        for column in ("our_vnd", "their_vnd", "difference_vnd", "our_lines", "their_lines"):
            assert int(total[column]) == sum(int(row[column] or 0) for row in mine)


@settings(max_examples=200, deadline=None)
@given(
    drawn=st.lists(
        st.tuples(
            st.sampled_from(IDS),
            st.integers(min_value=-limits.AMOUNT_MAX_VND, max_value=limits.AMOUNT_MAX_VND),
            st.text(max_size=30).filter(lambda text: "\n" not in text and "\r" not in text),
        ),
        max_size=20,
    )
)
def test_a_written_operator_file_reads_back_as_its_lines(
    drawn: list[tuple[str, int, str]],
) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["description", "transaction_id", "amount_vnd"])
    writer.writerows((description, tid, amount) for tid, amount, description in drawn)

    lines = read_operator_file(out.getvalue().encode())

    assert lines == their(*((tid, amount) for tid, amount, _ in drawn))
