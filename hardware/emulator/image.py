"""The emulated card's non-volatile memory (`CardImage`) and the JSON file that keeps it.

What a real card keeps through a power cut lives here; everything volatile (power, selection,
the open session) is in `EmulatedCard` (`hardware/emulator/card.py`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self

from hardware.tlc1.constants import (
    COUNTER_BYTES,
    PURSE_MAX_VND,
    RECORD_BYTES,
    RECORDS_PER_FILE,
    SERIAL_BYTES,
    TRANSACTION_COUNTER_INITIAL,
    Sfi,
)

IMAGE_FORMAT = 1
IMAGE_FILE_MODE = 0o600
RECORD_FILES = (Sfi.ENVIRONMENT, Sfi.EVENT_LOG, Sfi.CONTRACTS)


class CardImageError(ValueError):
    """A card image file that cannot be this card's memory."""

    code = "card_image_invalid"


@dataclass
class CardImage:
    """What survives a power cut: records (record 1 first), purse, counter, ratification flag.

    Selection and sessions are volatile, so they are not here: a loaded card is never selected.
    """

    serial: bytes
    records: dict[Sfi, list[bytes]]
    purse_vnd: int = 0
    transaction_counter: int = TRANSACTION_COUNTER_INITIAL
    ratified: bool = True

    @classmethod
    def blank(cls, serial: bytes) -> Self:
        """A new card, as CARD.md's vectors start: every record zero, purse 0, counter 1000."""
        records = {sfi: [bytes(RECORD_BYTES)] * RECORDS_PER_FILE[sfi] for sfi in RECORD_FILES}
        return cls(serial=serial, records=records)

    def copy(self) -> CardImage:
        records = {sfi: list(self.records[sfi]) for sfi in RECORD_FILES}
        return CardImage(
            self.serial, records, self.purse_vnd, self.transaction_counter, self.ratified
        )

    def to_json(self) -> str:
        document = {
            "format": IMAGE_FORMAT,
            "serial": self.serial.hex(),
            "records": {f"{sfi:02X}": [r.hex() for r in self.records[sfi]] for sfi in RECORD_FILES},
            "purse_vnd": self.purse_vnd,
            "transaction_counter": self.transaction_counter,
            "ratified": self.ratified,
        }
        return json.dumps(document, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Self:
        try:
            document = json.loads(text)
            if document["format"] != IMAGE_FORMAT:
                raise CardImageError(f"image format {document['format']} is not {IMAGE_FORMAT}")
            serial = bytes.fromhex(document["serial"])
            records = {
                sfi: [bytes.fromhex(r) for r in document["records"][f"{sfi:02X}"]]
                for sfi in RECORD_FILES
            }
            image = cls(
                serial=serial,
                records=records,
                purse_vnd=document["purse_vnd"],
                transaction_counter=document["transaction_counter"],
                ratified=document["ratified"],
            )
        except CardImageError:
            raise
        except (KeyError, TypeError, ValueError) as error:
            raise CardImageError(f"not a TLC1 card image: {error}") from None
        image.check()
        return image

    def check(self) -> None:
        """Refuses an image no real card could hold (a hand-edited file, a truncated write)."""
        if len(self.serial) != SERIAL_BYTES:
            raise CardImageError(f"a serial has {SERIAL_BYTES} bytes")
        for sfi in RECORD_FILES:
            if len(self.records[sfi]) != RECORDS_PER_FILE[sfi]:
                raise CardImageError(f"file {sfi:02X} has {RECORDS_PER_FILE[sfi]} records")
            if any(len(r) != RECORD_BYTES for r in self.records[sfi]):
                raise CardImageError(
                    f"file {sfi:02X} has a record that is not {RECORD_BYTES} bytes"
                )
        if not (isinstance(self.purse_vnd, int) and 0 <= self.purse_vnd <= PURSE_MAX_VND):
            raise CardImageError(f"the purse is outside 0..{PURSE_MAX_VND}")
        counter_max = (1 << (8 * COUNTER_BYTES)) - 1
        counter = self.transaction_counter
        if not (isinstance(counter, int) and 0 <= counter <= counter_max):
            raise CardImageError(f"the transaction counter is outside 0..{counter_max}")
        if not isinstance(self.ratified, bool):
            raise CardImageError("ratified is true or false")


class ImageStore(Protocol):
    def save(self, image: CardImage) -> None: ...


class ImageFile:
    """A card image kept as JSON, replaced atomically so a crash leaves the old or the new image."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load_or_create(self, serial: bytes) -> CardImage:
        if not self.path.exists():
            image = CardImage.blank(serial)
            self.save(image)
            return image
        image = CardImage.from_json(self.path.read_text())
        if image.serial != serial:
            raise CardImageError(f"{self.path} holds card {image.serial.hex()}, not {serial.hex()}")
        return image

    def save(self, image: CardImage) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The temporary file is in the target's directory, so os.replace is an atomic rename.
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            os.fchmod(handle, IMAGE_FILE_MODE)  # the image says what the card holds: owner only
            with os.fdopen(handle, "w") as file:
                file.write(image.to_json())
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
