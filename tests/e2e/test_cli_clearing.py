"""`tapledger clearing`: a day's cycle run from the command line, its positions and files, and
the bank's statement (camt.053 or the CSV fallback) confirming its payouts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from tapledger.cli import app
from tests.builders.clearing_day import a_day
from tests.builders.journeys import register_validators
from tests.builders.parking import MORNING, parking_world

DAY = MORNING.date()
ISO = Path(__file__).parents[1] / "data" / "iso20022"
PAID = ISO / "camt053-v08-cycle-20261123-paid.xml"
TRANSERCO_MISSING = ISO / "camt053-v08-cycle-20261123-transerco-missing.xml"
WIDE = {"COLUMNS": "200"}


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store holding the day of `tests/builders/clearing_day.py`; the command line's own
    clock is the real one, long after that day."""
    with parking_world(tmp_path) as world:
        register_validators(world.container.taps)
        a_day(world)
    monkeypatch.setenv("TAPLEDGER_DATA_DIR", str(tmp_path))
    return tmp_path


def clearing(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["clearing", *args], env=WIDE)
    return result.exit_code, result.output


def row(output: str, party: str) -> list[str]:
    line = next(line for line in output.splitlines() if line.startswith(f"│ {party} "))
    return [cell.strip() for cell in line.split("│")[1:-1]]


def test_run_prints_the_positions_and_writes_the_cycles_files(data_dir: Path) -> None:
    code, output = clearing("run", "--date", DAY.isoformat())

    assert code == 0, output
    assert row(output, "hanoi-metro") == ["hanoi-metro", "3", "21,666", "2,166", "19,500", "19,500"]
    # The debit under an id no writer makes: in suspense, as no one's revenue (0 VND).
    assert row(output, "suspense")[1:3] == ["1", "0"]
    assert row(output, "total")[4] == "0"
    assert "cycle 2026-11-23: closed" in output
    directory = data_dir / "clearing" / DAY.isoformat()
    assert f"wrote {directory / 'SHA256SUMS'}" in output
    schema = etree.XMLSchema(etree.parse(str(ISO / "pain.001.001.09.xsd")))
    schema.assertValid(etree.parse(str(directory / "TL-20261123-000001.xml")))


def test_running_it_again_writes_the_same_bytes(data_dir: Path) -> None:
    clearing("run", "--date", DAY.isoformat())
    directory = data_dir / "clearing" / DAY.isoformat()
    first = {path.name: path.read_bytes() for path in directory.iterdir()}

    code, output = clearing("run", "--date", DAY.isoformat())

    assert code == 0, output
    assert {path.name: path.read_bytes() for path in directory.iterdir()} == first


def test_a_day_not_over_is_refused_with_its_code(data_dir: Path) -> None:
    code, output = clearing("run", "--date", "2099-01-01")

    assert code == 2
    assert "day_not_over: the business day 2099-01-01 is not over yet" in output


def test_a_camt053_statement_booking_every_payout_settles_the_cycle(data_dir: Path) -> None:
    schema = etree.XMLSchema(etree.parse(str(ISO / "camt.053.001.08.xsd")))
    schema.assertValid(etree.parse(str(PAID)))
    clearing("run", "--date", DAY.isoformat())

    code, output = clearing("confirm", "--statement", str(PAID))

    assert code == 0, output
    # day, confirmed, missing, different, unexpected (the funding credit), state
    assert row(output, "2026-11-23") == ["2026-11-23", "3", "0", "0", "1", "settled"]
    code, listed = clearing("cycles")
    assert row(listed, "2026-11-23")[:3] == ["2026-11-23", "1", "settled"]


def test_a_statement_missing_a_payout_leaves_the_cycle_unsettled_with_the_reason(
    data_dir: Path,
) -> None:
    schema = etree.XMLSchema(etree.parse(str(ISO / "camt.053.001.08.xsd")))
    schema.assertValid(etree.parse(str(TRANSERCO_MISSING)))
    clearing("run", "--date", DAY.isoformat())

    code, output = clearing("confirm", "--statement", str(TRANSERCO_MISSING))

    assert code == 0, output
    assert row(output, "2026-11-23") == ["2026-11-23", "2", "1", "0", "1", "closed"]
    assert (
        "2026-11-23 flagged TL-20261123-transerco: missing from the statement of 2026-11-24"
        in output
    )
    _, listed = clearing("cycles")
    assert row(listed, "2026-11-23")[2] == "closed"
    assert "1 flagged" in row(listed, "2026-11-23")[6]


def test_the_csv_fallback_confirms_the_payouts_it_books(data_dir: Path, tmp_path: Path) -> None:
    clearing("run", "--date", DAY.isoformat())
    statement = tmp_path / "statement.csv"
    statement.write_text(
        "booking_date,end_to_end_id,amount_vnd,direction,counterparty_name,"
        "counterparty_account,bank_reference\n"
        "2026-11-24,TL-20261123-hanoi-metro,19500,DBIT,HANOI METRO,12010000123456,FT1\n"
        "2026-11-24,TL-20261123-hanoi-parking,18000,DBIT,PARKING,0021000987654,FT2\n"
        "2026-11-24,TL-20261123-transerco,16500,DBIT,TRANSERCO,113000654321,FT3\n"
    )
    args = ["confirm", "--statement", str(statement), "--account", "0011004455667"]

    code, output = clearing(*args, "--date", (DAY + timedelta(days=1)).isoformat())

    assert code == 0, output
    assert row(output, "2026-11-23") == ["2026-11-23", "2", "0", "1", "0", "closed"]
    assert "TL-20261123-transerco:" in output  # booked for 16,500, not 16,501


def test_a_csv_statement_needs_its_account_and_date(data_dir: Path, tmp_path: Path) -> None:
    statement = tmp_path / "statement.csv"
    statement.write_text("booking_date,end_to_end_id,amount_vnd\n")

    code, output = clearing("confirm", "--statement", str(statement))

    assert code == 2
    assert "statement_options_missing:" in output


def test_a_statement_that_does_not_read_is_refused_with_its_code(
    data_dir: Path, tmp_path: Path
) -> None:
    statement = tmp_path / "statement.xml"
    statement.write_text("<Document><BkToCstmrStmt/></Document>")

    code, output = clearing("confirm", "--statement", str(statement))

    assert code == 2
    assert output.startswith("statement_")


def test_a_statement_of_a_day_with_no_closed_cycle_confirms_nothing(data_dir: Path) -> None:
    code, output = clearing("confirm", "--statement", str(PAID))

    assert code == 0, output
    assert "the statement of 2026-11-24 concerns no closed cycle" in output


def test_cycles_says_when_there_is_none(data_dir: Path) -> None:
    code, output = clearing("cycles")

    assert code == 0
    assert "no cycle yet" in output
