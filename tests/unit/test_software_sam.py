"""The software SAM: key files plain and sealed, secrets kept out of sight, MACs as the vectors."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest

import hardware.sam as sam_module
from hardware.invariants import InvariantViolated
from hardware.sam import (
    KEY_FILE_BYTES_MAX,
    KeyFileInvalid,
    KeyFileUnsealFailed,
    KeyLevelNotHeld,
    SamSession,
    SoftwareSam,
    parse_key_file,
    seal_key_file,
)
from hardware.tlc1.constants import KeyLevel
from tests.vectors import CARD_VECTORS_PATH

VECTORS: dict[str, Any] = json.loads(CARD_VECTORS_PATH.read_text())
TRACE: list[dict[str, str]] = VECTORS["trace"]
SERIAL = bytes.fromhex(VECTORS["serial"])
MASTER_KEYS: dict[str, str] = VECTORS["master_keys"]
KEK = bytes(range(32))
OTHER_KEK = bytes(range(1, 33))
SW_BYTES = 2

# (OPEN index, CLOSE index) of each session the card accepts in the trace, and its level.
ACCEPTED_SESSIONS = [
    (1, 3, KeyLevel.PERSONALISATION),
    (4, 6, KeyLevel.LOAD),
    (8, 12, KeyLevel.DEBIT),
]


def exchange(index: int) -> tuple[bytes, bytes]:
    return bytes.fromhex(TRACE[index]["command"]), bytes.fromhex(TRACE[index]["response"])


def open_vector_session(sam: SoftwareSam, open_index: int, level: KeyLevel) -> SamSession:
    command, response = exchange(open_index)
    return sam.open_session(
        serial=SERIAL,
        level=level,
        terminal_challenge=command[5:13],
        card_challenge=response[:8],
        counter=int.from_bytes(response[8:11], "big"),
    )


def transcript(open_index: int, close_index: int) -> bytes:
    text = exchange(open_index)[1][:-SW_BYTES]
    for index in range(open_index + 1, close_index):
        command, response = exchange(index)
        text += command + response
    return text


def plain_key_file(tmp_path: Path, keys: dict[str, str] = MASTER_KEYS) -> Path:
    path = tmp_path / "master-keys.json"
    path.write_text(json.dumps(keys))
    return path


def sealed_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "master-keys.sealed"
    path.write_bytes(seal_key_file(json.dumps(MASTER_KEYS).encode(), kek=KEK))
    return path


def assert_matches_the_vectors(sam: SoftwareSam) -> None:
    for open_index, close_index, level in ACCEPTED_SESSIONS:
        session = open_vector_session(sam, open_index, level)
        close_command, close_response = exchange(close_index)
        text = transcript(open_index, close_index)
        assert session.terminal_mac(text) == close_command[5:13]
        assert session.card_mac_is_valid(text, close_response[:8])


def test_plain_key_file_gives_the_terminal_macs_of_the_trace(tmp_path: Path) -> None:
    assert_matches_the_vectors(SoftwareSam.from_key_file(plain_key_file(tmp_path)))


def test_sealed_key_file_gives_the_same_macs(tmp_path: Path) -> None:
    assert_matches_the_vectors(SoftwareSam.from_sealed_key_file(sealed_key_file(tmp_path), kek=KEK))


def test_a_card_key_remembered_from_an_earlier_session_gives_the_same_macs(
    tmp_path: Path,
) -> None:
    sam = SoftwareSam.from_key_file(plain_key_file(tmp_path))
    assert_matches_the_vectors(sam)
    assert_matches_the_vectors(sam)  # every card key is remembered now


def test_a_sam_that_remembered_too_many_card_keys_forgets_them_and_stays_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sam_module, "CARD_KEYS_REMEMBERED_MAX", 1)
    sam = SoftwareSam.from_key_file(plain_key_file(tmp_path))
    assert_matches_the_vectors(sam)  # three levels through a memory of one
    assert_matches_the_vectors(sam)


def test_sealed_key_file_does_not_contain_the_keys(tmp_path: Path) -> None:
    sealed = sealed_key_file(tmp_path).read_bytes()
    for key in MASTER_KEYS.values():
        assert key.encode() not in sealed.lower()
        assert bytes.fromhex(key) not in sealed


def test_sealed_key_file_refuses_a_wrong_kek(tmp_path: Path) -> None:
    with pytest.raises(KeyFileUnsealFailed):
        SoftwareSam.from_sealed_key_file(sealed_key_file(tmp_path), kek=OTHER_KEK)


def test_sealed_key_file_refuses_a_changed_byte(tmp_path: Path) -> None:
    sealed = bytearray(base64.b64decode(sealed_key_file(tmp_path).read_bytes()))
    sealed[-1] ^= 0x01
    path = tmp_path / "changed.sealed"
    path.write_bytes(base64.b64encode(bytes(sealed)))
    with pytest.raises(KeyFileUnsealFailed):
        SoftwareSam.from_sealed_key_file(path, kek=KEK)


def test_a_plain_file_given_as_sealed_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileInvalid):
        SoftwareSam.from_sealed_key_file(plain_key_file(tmp_path), kek=KEK)


def test_a_kek_of_the_wrong_length_is_a_wiring_bug(tmp_path: Path) -> None:
    with pytest.raises(InvariantViolated):
        SoftwareSam.from_sealed_key_file(sealed_key_file(tmp_path), kek=KEK[:16])


def test_repr_and_str_show_levels_never_keys(tmp_path: Path) -> None:
    sam = SoftwareSam.from_key_file(plain_key_file(tmp_path))
    session = open_vector_session(sam, 8, KeyLevel.DEBIT)
    shown = " ".join([repr(sam), str(sam), repr(session), str(session)]).lower()
    assert "levels=[1, 2, 3]" in shown
    for key in [*MASTER_KEYS.values(), *VECTORS["card_level_keys"].values()]:
        assert key not in shown
        assert repr(bytes.fromhex(key)).lower() not in shown


def test_loading_and_using_keys_logs_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        sam = SoftwareSam.from_sealed_key_file(sealed_key_file(tmp_path), kek=KEK)
        assert_matches_the_vectors(sam)
    assert caplog.records == []


def test_a_sam_holding_only_the_debit_key_opens_only_debit_sessions(tmp_path: Path) -> None:
    sam = SoftwareSam.from_key_file(plain_key_file(tmp_path, {"3": MASTER_KEYS["3"]}))
    assert sam.levels == {KeyLevel.DEBIT}
    assert (
        open_vector_session(sam, 8, KeyLevel.DEBIT).terminal_mac(transcript(8, 12))
        == (exchange(12)[0][5:13])
    )
    with pytest.raises(KeyLevelNotHeld) as refused:
        open_vector_session(sam, 4, KeyLevel.LOAD)
    assert refused.value.level == KeyLevel.LOAD


def test_a_wrong_master_key_gives_another_terminal_mac(tmp_path: Path) -> None:
    wrong = SoftwareSam.from_key_file(plain_key_file(tmp_path, {"3": "ff" * 16}))
    session = open_vector_session(wrong, 8, KeyLevel.DEBIT)
    assert session.terminal_mac(transcript(8, 12)) != exchange(12)[0][5:13]
    assert not session.card_mac_is_valid(transcript(8, 12), exchange(12)[1][:8])


@pytest.mark.parametrize(
    "card_mac",
    [
        pytest.param("BD2F36A8C0A9F31D", id="last bit flipped"),
        pytest.param("BD2F36A8C0A9F3", id="7 bytes"),
        pytest.param("BD2F36A8C0A9F31C00", id="9 bytes"),
        pytest.param("", id="empty"),
    ],
)
def test_a_card_mac_that_is_not_the_cards_is_invalid(tmp_path: Path, card_mac: str) -> None:
    sam = SoftwareSam.from_key_file(plain_key_file(tmp_path))
    session = open_vector_session(sam, 8, KeyLevel.DEBIT)
    assert not session.card_mac_is_valid(transcript(8, 12), bytes.fromhex(card_mac))


def test_a_card_mac_over_another_transcript_is_invalid(tmp_path: Path) -> None:
    sam = SoftwareSam.from_key_file(plain_key_file(tmp_path))
    session = open_vector_session(sam, 8, KeyLevel.DEBIT)
    assert not session.card_mac_is_valid(transcript(8, 11), exchange(12)[1][:8])


SECRET = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe", id="not utf-8"),
        pytest.param(f'{{"3": "{SECRET}"'.encode(), id="cut JSON"),
        pytest.param(f'["{SECRET}"]'.encode(), id="array"),
        pytest.param(b"{}", id="no keys"),
        pytest.param(f'{{"4": "{SECRET}"}}'.encode(), id="level 4"),
        pytest.param(f'{{"debit": "{SECRET}"}}'.encode(), id="level by name"),
        pytest.param(f'{{"3": "{SECRET[:-2]}"}}'.encode(), id="15-byte key"),
        pytest.param(f'{{"3": "{SECRET}00"}}'.encode(), id="17-byte key"),
        pytest.param(f'{{"3": "{SECRET[:-1]}g"}}'.encode(), id="not hex"),
        pytest.param(b'{"3": 12345}', id="a number"),
    ],
)
def test_a_malformed_key_file_is_refused_without_quoting_it(text: bytes) -> None:
    with pytest.raises(KeyFileInvalid) as refused:
        parse_key_file(text)
    assert SECRET[:8] not in str(refused.value)
    # No parser error rides along, chained or as context: its attributes could hold the file.
    assert refused.value.__cause__ is None
    assert refused.value.__context__ is None


def test_an_oversized_key_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_bytes(b" " * (KEY_FILE_BYTES_MAX + 1))
    with pytest.raises(KeyFileInvalid):
        SoftwareSam.from_key_file(path)


@pytest.mark.parametrize(
    "argument",
    ["serial", "terminal_challenge", "card_challenge", "counter"],
)
def test_a_session_with_malformed_inputs_is_a_bug(tmp_path: Path, argument: str) -> None:
    sam = SoftwareSam.from_key_file(plain_key_file(tmp_path))
    good: dict[str, Any] = {
        "serial": SERIAL,
        "terminal_challenge": bytes(8),
        "card_challenge": bytes(8),
        "counter": 1000,
    }
    bad = {**good, argument: 1 << 24 if argument == "counter" else bytes(7)}
    with pytest.raises(InvariantViolated):
        sam.open_session(level=KeyLevel.DEBIT, **bad)
