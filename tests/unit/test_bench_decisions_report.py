"""The decision benchmark's section: each cell against its medium's budget (needs pyscard)."""

from __future__ import annotations

from tests.services import require_pyscard

require_pyscard()

# bench_decisions reaches pyscard through hardware.pcsc, so it comes after the check above.
from loadtests.bench_decisions import MARK_END, MARK_START, section  # noqa: E402
from loadtests.decision_path import Cell  # noqa: E402
from loadtests.latency import Measurement  # noqa: E402


def cell(medium: str, p99_ms: float) -> Cell:
    return Cell(medium, "bus", Measurement(100, 1.0, p99_ms / 2, p99_ms, p99_ms), "charged")


def test_a_card_over_200_ms_or_a_qr_over_300_ms_at_p99_is_reported_not_met() -> None:
    text = section(
        [cell("card", 250.0), cell("qr", 250.0)], "Virtual PCD 00 01", ("1 / 1 / 1",) * 2, 0.1
    )

    rows = [
        line for line in text.splitlines() if line.startswith("| card") or line.startswith("| QR")
    ]
    assert rows[0].endswith("| ≤ 200 ms | **not met** |")
    assert rows[1].endswith("| ≤ 300 ms | met |")
    assert "**not all met**" in text
    assert text.startswith(MARK_START)
    assert text.endswith(MARK_END)
