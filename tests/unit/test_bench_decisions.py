"""The decision benchmark's measurement, on an in-process card (no pcscd) and a phone's codes."""

from __future__ import annotations

from hardware.emulator.card import CardTorn
from hardware.fake_reader import CardInReader
from loadtests.decision_path import KINDS, bench_card, measure_card, measure_qr
from loadtests.latency import SAMPLES_MIN

EXPECTED_CARD_DECISIONS = {
    "bus": "charged",
    "metro entry": "charged",
    "metro exit": "paid_at_entry",
}
# Shorter than any machine takes for SAMPLES_MIN decisions: the cells stop at the minimum.
SECONDS_SHORT = 0.01


def test_card_cells_time_each_kind_and_the_exit_finds_the_entry_on_the_card() -> None:
    card, master_keys = bench_card()
    reader = CardInReader(card, "in-process", lost_card_errors=(CardTorn,))

    cells = measure_card(reader, master_keys, SECONDS_SHORT)

    assert {cell.kind: cell.reason for cell in cells} == EXPECTED_CARD_DECISIONS
    assert all(cell.medium == "card" for cell in cells)
    assert all(cell.measurement.count >= SAMPLES_MIN for cell in cells)
    assert all(0 < cell.measurement.p50_ms <= cell.measurement.p99_ms for cell in cells)
    assert all(cell.measurement.p99_ms <= cell.measurement.max_ms for cell in cells)


def test_qr_cells_accept_every_code_of_each_kind() -> None:
    cells = measure_qr(SECONDS_SHORT)

    assert [(cell.medium, cell.kind, cell.reason) for cell in cells] == [
        ("qr", kind, "accepted") for kind in KINDS
    ]
    assert all(cell.measurement.count >= SAMPLES_MIN for cell in cells)
    assert all(0 < cell.measurement.p50_ms <= cell.measurement.p99_ms for cell in cells)
