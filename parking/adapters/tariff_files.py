"""Tariff files on disk: the Hanoi tables shipped with the package, or any file in the format of
`docs/parking-tariffs.md`. Reading is here; checking is `parking.domain.tariff_format`'s."""

from __future__ import annotations

from pathlib import Path

from parking.domain.errors import TariffFileInvalid
from parking.domain.limits import TARIFF_FILE_BYTES_MAX
from parking.domain.tariff import RateTable
from parking.domain.tariff_format import parse_rate_table

# Installed with the package (pyproject.toml's package-data for `parking`).
TARIFF_DIR = Path(__file__).resolve().parents[1] / "tariffs"
HANOI_IPARKING = TARIFF_DIR / "hanoi-iparking.json"
HANOI_DONG_DA = TARIFF_DIR / "hanoi-dong-da.json"


def load_rate_table(path: Path) -> RateTable:
    """Read one tariff file; every problem, unreadable file included, is `TariffFileInvalid`."""
    try:
        with path.open("rb") as handle:
            data = handle.read(TARIFF_FILE_BYTES_MAX + 1)
    except OSError as error:
        raise TariffFileInvalid(path.name, "", f"cannot be read: {error.strerror}") from None
    if len(data) > TARIFF_FILE_BYTES_MAX:
        raise TariffFileInvalid(path.name, "", f"larger than {TARIFF_FILE_BYTES_MAX} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TariffFileInvalid(path.name, "", "not UTF-8 text") from None
    return parse_rate_table(text, path.name)


def load_rate_tables(directory: Path = TARIFF_DIR) -> dict[str, RateTable]:
    """Every `*.json` tariff in a directory, by table id; two files with one id are refused."""
    tables: dict[str, RateTable] = {}
    for path in sorted(directory.glob("*.json")):
        table = load_rate_table(path)
        if table.table_id in tables:
            raise TariffFileInvalid(path.name, "table_id", f"{table.table_id!r} is used twice")
        tables[table.table_id] = table
    return tables
