"""Which card reader `validator run --reader NAME` means.

PC/SC names readers after their driver and slot ("Virtual PCD 00 00", "ACS ACR1252 1S CL Reader
[ACR1252 Dual Reader PICC] 00 00"), so people type part of a name. `--reader` is matched as a
case-insensitive substring, and a name given in full wins over the longer names it is part of
("Reader 1" is not "Reader 10"). When the part fits several readers, the first of them (in the
order PC/SC lists them) with a card on it at start-up is the one: an integrator puts the card on
the reader they mean. When none of them holds a card, the run is refused with every full name and
how to give one, rather than waiting on all of them: a gate must read from the same reader every
time it starts, not from whichever one a rider touches first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hardware.reader import CardReader, ReaderError


def choose_reader(
    wanted: str, names: Sequence[str], open_reader: Callable[[str], CardReader]
) -> CardReader:
    """The reader `wanted` names among `names`; `ReaderNotChosen` says why there is none."""
    folded = wanted.casefold()
    exact = [name for name in names if name.casefold() == folded]
    matching = exact or [name for name in names if folded in name.casefold()]
    if not matching:
        listed = "; ".join(names) if names else "none"
        raise ReaderNotChosen(f"no card reader's name contains {wanted!r} (readers: {listed})")
    if len(matching) == 1:
        return open_reader(matching[0])
    for name in matching:
        reader = open_reader(name)
        if _holds_card(reader):
            return reader
    raise ReaderNotChosen(
        f"--reader {wanted!r} matches {len(matching)} readers and none of them holds a card:\n"
        + "".join(f"  {name}\n" for name in matching)
        + "put the card on the reader to use and start again, or name it in full, e.g. "
        + f'--reader "{matching[0]}"'
    )


def _holds_card(reader: CardReader) -> bool:
    try:
        return reader.is_card_present()
    except ReaderError:
        # A reader that cannot say is not the one holding the card; the others may be.
        return False


class ReaderNotChosen(Exception):
    """`--reader` names no reader, or several with no card to tell them apart."""

    code = "reader_not_chosen"
