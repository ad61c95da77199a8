"""Where the tests find the wire formats' vectors: in the repository, under `tests/data/`
(their origin is in `tests/data/README.md`), so a clone tests itself with nothing beside it."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
QR_VECTORS_PATH = DATA_DIR / "qr-vectors.json"
CARD_VECTORS_PATH = DATA_DIR / "card-vectors.json"
