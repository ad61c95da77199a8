"""Which reader `validator run --reader NAME` opens when NAME fits one reader, several, or none."""

from __future__ import annotations

import pytest

from hardware.fake_reader import ScriptedReader
from hardware.reader import CardReader, ReaderIOError
from validators.reader_choice import ReaderNotChosen, choose_reader

VIRTUAL = ["Virtual PCD 00 00", "Virtual PCD 00 01"]


def readers(with_card: frozenset[str]) -> dict[str, ScriptedReader]:
    names = [*VIRTUAL, "ACS ACR122U PICC Interface [CL Reader] 00 00", "Reader 1", "Reader 10"]
    return {name: ScriptedReader(name, [], card_present=name in with_card) for name in names}


def choose(wanted: str, with_card: frozenset[str] = frozenset()) -> CardReader:
    slots = readers(with_card)
    return choose_reader(wanted, list(slots), slots.__getitem__)


def test_a_name_fitting_one_reader_opens_it_with_or_without_a_card() -> None:
    assert choose("acr122u").name == "ACS ACR122U PICC Interface [CL Reader] 00 00"
    assert choose("virtual pcd 00 01").name == "Virtual PCD 00 01"


def test_a_name_fitting_several_readers_opens_the_first_with_a_card() -> None:
    assert choose("Virtual PCD", frozenset({"Virtual PCD 00 01"})).name == "Virtual PCD 00 01"
    assert choose("Virtual PCD", frozenset(VIRTUAL)).name == "Virtual PCD 00 00"


def test_a_name_given_in_full_wins_over_the_longer_names_it_is_part_of() -> None:
    assert choose("Reader 1", frozenset({"Reader 10"})).name == "Reader 1"


def test_several_readers_and_no_card_is_refused_with_every_full_name_and_how_to_give_one() -> None:
    with pytest.raises(ReaderNotChosen) as refused:
        choose("Virtual PCD")
    message = str(refused.value)
    assert "matches 2 readers and none of them holds a card" in message
    assert all(f"  {name}\n" in message for name in VIRTUAL)
    assert message.endswith('e.g. --reader "Virtual PCD 00 00"')


def test_a_name_fitting_no_reader_is_refused_with_the_readers_there_are() -> None:
    with pytest.raises(ReaderNotChosen, match=r"contains 'Omnikey'.*Virtual PCD 00 01"):
        choose("Omnikey")
    with pytest.raises(ReaderNotChosen, match=r"readers: none"):
        choose_reader("Virtual PCD", [], lambda name: ScriptedReader(name, []))


class DeadReader(ScriptedReader):
    def is_card_present(self) -> bool:
        raise ReaderIOError(f"{self.name}: the reader is gone or unavailable")


def test_a_reader_that_cannot_say_whether_it_holds_a_card_is_passed_over() -> None:
    slots: dict[str, CardReader] = {
        "Virtual PCD 00 00": DeadReader("Virtual PCD 00 00", []),
        "Virtual PCD 00 01": ScriptedReader("Virtual PCD 00 01", [], card_present=True),
    }
    assert choose_reader("Virtual PCD", list(slots), slots.__getitem__).name == "Virtual PCD 00 01"
