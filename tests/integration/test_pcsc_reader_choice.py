"""`validator run --reader` over the real PC/SC path, where vpcd lists two "Virtual PCD" readers.

The card sits on vpcd's second slot (tests/integration/pcsc_card.py); the first is left empty.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.services import require_pyscard, vpcd_exclusive

require_pyscard()

# These reach pyscard through hardware.pcsc, so they come after the check just above.
from hardware.emulator.vpcd_slot import VpcdSlot  # noqa: E402
from hardware.pcsc import PcscReader, list_readers  # noqa: E402
from tapledger.cli import app  # noqa: E402
from tests.builders.card_emulator import MASTER_KEYS  # noqa: E402
from tests.integration.pcsc_card import pcsc_card, second_vpcd_slot  # noqa: E402
from validators import cli as validator_cli  # noqa: E402
from validators.reader_choice import ReaderNotChosen, choose_reader  # noqa: E402

VIRTUAL = "virtual pcd"
CARD_GONE_TIMEOUT_S = 5.0
CARD_WAIT_S = 1

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def vpcd_slot() -> Iterator[VpcdSlot]:
    # The module looks at both of vpcd's readers, empty ones too: no other run may use them.
    with vpcd_exclusive():
        yield second_vpcd_slot()


def empty_slots(slot: VpcdSlot) -> list[str]:
    """The vpcd readers, once the card of an earlier test has left the second one."""
    assert PcscReader(slot.reader_name()).wait_for_removal(CARD_GONE_TIMEOUT_S)
    names = list_readers(VIRTUAL)
    assert len(names) >= 2, f"vpcd lists {names}: this test needs two of its slots"
    return names


def dead_server() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def run_validator(tmp_path: Path, reader: str, *extra: str) -> Result:
    (tmp_path / "device.token").write_text("tlk_device_token\n")
    keys = {str(int(level)): key.hex() for level, key in MASTER_KEYS.items()}
    (tmp_path / "sam.json").write_text(json.dumps(keys))
    return CliRunner().invoke(
        app,
        [
            *("validator", "run", "--server", dead_server(), "--validator-id", "3101"),
            *("--token-file", str(tmp_path / "device.token")),
            *("--state-dir", str(tmp_path / "gate")),
            *("--reader", reader, "--sam-key-file", str(tmp_path / "sam.json"), "--plain"),
            *extra,
        ],
    )


def test_a_name_fitting_two_readers_opens_the_one_holding_the_card(vpcd_slot: VpcdSlot) -> None:
    with pcsc_card(vpcd_slot) as presented:
        chosen = choose_reader(VIRTUAL, list_readers(), PcscReader)
        assert chosen.name == presented.reader.name
        assert chosen.is_card_present()


def test_a_name_fitting_two_empty_readers_is_refused_naming_each_in_full(
    vpcd_slot: VpcdSlot, tmp_path: Path
) -> None:
    names = empty_slots(vpcd_slot)
    with pytest.raises(ReaderNotChosen) as refused:
        choose_reader(VIRTUAL, list_readers(), PcscReader)
    assert all(name in str(refused.value) for name in names)

    run = run_validator(tmp_path, "Virtual PCD", "--once")
    assert run.exit_code == validator_cli.EXIT_BAD_INPUT, run.output
    assert f'e.g. --reader "{names[0]}"' in run.output


def test_once_on_a_reader_no_card_comes_to_exits_no_card(
    vpcd_slot: VpcdSlot, tmp_path: Path
) -> None:
    empty_slots(vpcd_slot)
    run = run_validator(
        tmp_path, vpcd_slot.reader_name(), "--once", "--card-wait-s", str(CARD_WAIT_S)
    )
    assert run.exit_code == validator_cli.EXIT_NO_CARD, run.output
    assert f"no card was presented within {CARD_WAIT_S} s" in run.output
