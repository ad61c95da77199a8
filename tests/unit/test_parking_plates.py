"""Vietnamese licence plates are read in every way people and scanners write them, and a text
that is not a plate is refused with a reason."""

from __future__ import annotations

import pytest

from parking.domain.errors import PlateUnreadable
from parking.domain.plate import Plate, normalise_plate


@pytest.mark.parametrize(
    "text",
    ["29A-123.45", "29A12345", "29 A 123 45", "29a-123.45", " 29A 123.45 ", "29-A-12345"],
)
def test_car_plate_is_read_in_every_usual_form(text: str) -> None:
    plate = normalise_plate(text)
    assert plate == Plate("29", "A", "12345")
    assert plate.display == "29A-123.45"
    assert plate.compact == "29A12345"


@pytest.mark.parametrize("text", ["29-B1 123.45", "29B1-123.45", "29B112345", "29 b1 12345"])
def test_motorbike_plate_with_a_letter_and_digit_series(text: str) -> None:
    plate = normalise_plate(text)
    assert plate == Plate("29", "B1", "12345")
    assert str(plate) == "29-B1 123.45"


@pytest.mark.parametrize(
    ("text", "display"),
    [
        ("29A-1234", "29A-1234"),
        ("29-B1 1234", "29-B1 1234"),
        ("29B1-1234", "29-B1 1234"),
        ("30LD-123.45", "30LD-123.45"),
        ("30LĐ 12345", "30LD-123.45"),
        ("29-AA 123.45", "29AA-123.45"),
        ("99Z-99999", "99Z-999.99"),
    ],
)
def test_older_and_two_letter_plates(text: str, display: str) -> None:
    assert normalise_plate(text).display == display


def test_five_digits_after_one_letter_with_no_separator_read_as_a_car_plate() -> None:
    # "29B11234" could be 29B-112.34 or 29-B1 1234; the new five-digit car form wins.
    assert normalise_plate("29B11234") == Plate("29", "B", "11234")


def test_equal_plates_share_one_compact_key() -> None:
    keys = {normalise_plate(text).compact for text in ("29-B1 123.45", "29B1 12345", "29b112345")}
    assert keys == {"29B112345"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("  - . ", "empty"),
        ("29A_12345", "only letters"),
        ("29Á-12345", "only letters"),
        ("2A-12345", "province code, a series"),
        ("29A-123", "province code, a series"),
        ("29A-1234567", "province code, a series"),
        ("29ABC-12345", "province code, a series"),
        ("29-12345", "province code, a series"),
        ("ABC-12345", "province code, a series"),
        ("09A-12345", "not in 11..99"),
        ("29AA-123456", "not 6"),
        ("29AB1-1234", "not both"),
        ("29A-123.45 29A-123.45", "longer than 20"),
    ],
)
def test_text_that_is_not_a_plate_is_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(PlateUnreadable) as raised:
        normalise_plate(text)
    assert reason in raised.value.reason or reason in str(raised.value)
    assert raised.value.code == "plate_unreadable"
