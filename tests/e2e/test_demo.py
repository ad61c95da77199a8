"""`tapledger demo`, the main job, runs every path end to end and checks itself."""

from __future__ import annotations

import io
import re
from pathlib import Path

from lxml import etree
from rich.console import Console

from tapledger.demo import run_demo

PAIN001_XSD = Path(__file__).parents[1] / "data" / "iso20022" / "pain.001.001.09.xsd"


def _run_demo(tmp_path: Path, *, fleet: bool = False) -> str:
    """The demo's output; the live fleet scene only where a test looks at it (it adds ~10 s)."""
    out = io.StringIO()
    # run_demo raises typer.Exit(1) when any of its own checks fails.
    run_demo(Console(file=out, width=160), data_dir=tmp_path / "demo", fleet=fleet)
    return out.getvalue()


def test_the_demo_runs_every_path_and_its_own_checks_pass(tmp_path: Path) -> None:
    text = _run_demo(tmp_path, fleet=True)
    assert "transfer_conflict" in text  # the forged top-up callback was refused
    assert "accepted" in text
    assert "code_replayed" in text
    assert "card_denied" in text  # the stolen phone
    assert "retap_after_tear" in text  # the torn smart-card tap
    assert "22,000" in text  # Lan's bus + metro journey with the transfer discount
    assert "read models agree with the accounts: yes" in text
    assert "identical: yes" in text
    _assert_the_live_fleet_scene_checked_itself(text)


def _assert_the_live_fleet_scene_checked_itself(text: str) -> None:
    """The fleet scene's own checks, and its health table: three devices, each reporting."""
    assert "this part runs on the real clock" in text
    assert "3 tapledger validator run processes synced and running" in text
    assert re.search(r"Tuấn's smart card .* vpcd-listen:127\.0\.0\.1:\d+: accepted \(charged", text)
    assert "the link of 2A Cát Linh · entry is cut" in text
    assert "decided offline, waiting in its outbox: 2 taps" in text
    assert "2A Cát Linh · entry uploaded seq 2, 3: backend accepted" in text
    assert "the offline taps arrived only after the link came back: yes" in text
    assert "each of the 8 taps the devices decided is in the backend exactly once: yes" in text
    assert "the fleet table lists the 3 devices with their reports: yes" in text
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in text[text.index("The fleet's health") :].splitlines()
        if line.count("│") == 8
    ]
    assert [(row[0], row[1], row[2], row[4], row[6]) for row in rows] == [
        ("5001", "bus", "01 Kim Mã", "0", "none"),
        ("5101", "metro_gate", "2A Cát Linh in", "0", "none"),
        ("5112", "metro_gate", "2A Yên Nghĩa out", "0", "none"),
    ]
    assert all(row[3].endswith(" s ago") for row in rows)
    assert re.search(r"stopped the 3 devices \(exit codes: bus 01 · Kim Mã 0, .* 0, .* 0\)", text)


def test_the_demo_parks_on_the_parking_context(tmp_path: Path) -> None:
    lines = _run_demo(tmp_path).splitlines()

    def rows(columns: int) -> list[list[str]]:
        """The cells of each row of the tables with that many columns."""
        cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines]
        return [row for row in cells if len(row) == columns]

    # The Hanoi default lots are loaded: two iParking lots and Dong Da's, with their rate tables.
    assert [row[0] for row in rows(7) if row[2].startswith("hanoi-")] == [
        "hk-ly-thai-to",
        "hk-trang-thi",
        "dd-ton-duc-thang",
    ]
    text = "\n".join(lines)
    assert "hold 25,000 VND" in text  # the app's 2 hours for the car
    assert "hold 13,000 VND" in text  # the attendant's scan: a day turn and a night turn
    assert "code_already_used" in text  # the same phone code scanned twice
    assert re.search(r"29A-123\.45: paid, paid until 13:30", text)
    assert "30E-678.90: unpaid" in text
    assert "the hold grows by 35,000 to 60,000 VND" in text
    # The motorbike's stay crosses iParking's 18:00: a day turn, then a night turn.
    assert "day 11:40-18:00 5,000 + night 18:00-18:30 8,000" in text
    # The detail records: lot, plate, class, segments, fee, posted.
    assert [row for row in rows(6) if row[0].startswith(("hk-", "dd-"))] == [
        ["hk-ly-thai-to", "29A-123.45", "car", "2", "60,000", "60,000"],
        ["hk-trang-thi", "29-B1 456.78", "motorbike", "2", "13,000", "13,000"],
        ["dd-ton-duc-thang", "30G-111.22", "car", "1", "25,000", "25,000"],
    ]
    # Two bookings of a car place; Hoa's is taken up, Minh's missed and charged the no-show fee.
    assert "books for 30G-111.22: hold 25,000 VND" in text
    assert "books for 30H-333.44: hold 25,000 VND" in text
    assert "the reservation becomes a session (reservation), paid until 13:00" in text
    assert "marks 1 reservation a no-show: Minh pays 25,000 VND" in text
    assert "credits 10,000 VND to Tuấn's record at hk-ly-thai-to" in text
    assert "net 50,000 VND" in text


def test_the_demo_ends_with_its_days_clearing_cycle(tmp_path: Path) -> None:
    lines = _run_demo(tmp_path).splitlines()
    text = "\n".join(lines)

    start = lines.index(next(line for line in lines if "its clearing cycle runs" in line))
    # The positions table: every operator of the day, then suspense, scheme, float and 0 VND.
    table = [line for line in lines[start:] if line.count("│") == 7]
    parties = [line.split("│")[1].strip() for line in table]
    assert parties == [
        "dong-da-parking",
        "hanoi-iparking",
        "hanoi-metro",
        "transerco",
        "suspense",
        "scheme",
        "rider_float",
        "total",
    ]
    assert table[-1].split("│")[5].strip() == "0"
    assert "positions add up to 0 VND" in text
    assert "0 lines in suspense" in text  # every movement of the day is somebody's, by its id
    directory = tmp_path / "clearing" / "2026-11-23"
    names = sorted(path.name for path in directory.iterdir())
    assert names == [
        "SHA256SUMS",
        "TL-20261123-000001.xml",
        "lines-dong-da-parking.csv",
        "lines-hanoi-iparking.csv",
        "lines-hanoi-metro.csv",
        "lines-transerco.csv",
        "positions.csv",
        "statement-dong-da-parking.csv",
        "statement-hanoi-iparking.csv",
        "statement-hanoi-metro.csv",
        "statement-transerco.csv",
        "suspense.csv",
    ]
    assert f"wrote {directory / 'SHA256SUMS'}" in text
    schema = etree.XMLSchema(etree.parse(str(PAIN001_XSD)))
    schema.assertValid(etree.parse(str(directory / "TL-20261123-000001.xml")))


def test_two_demo_runs_write_the_same_clearing_files(tmp_path: Path) -> None:
    # The demo's ids are its writers' natural keys (journeys from validator taps, parking
    # sessions from their requests) and its clock is simulated, so its files are the same
    # bytes however often it runs; account ids are random but no file names them.
    _run_demo(tmp_path / "first")
    _run_demo(tmp_path / "second")

    def files(root: Path) -> dict[str, bytes]:
        directory = root / "clearing" / "2026-11-23"
        return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}

    first = files(tmp_path / "first")
    assert first == files(tmp_path / "second")
    assert len(first) == 12
