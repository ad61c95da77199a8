"""TAPLEDGER_SAM_KEY_FILE: the file's form is read from it, and `_SEALED` only insists."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hardware.sam import KeyFileForm, KeyFileInvalid, SoftwareSam, key_file_form, seal_key_file
from tapledger.cli import app
from tapledger.sam_key_file import SamKeyFileUnusable, make_sam
from tapledger.settings import Settings
from tests.builders.settings import EnvironmentSettings, ExplicitSettings
from tests.vectors import CARD_VECTORS_PATH

KEYS = json.loads(CARD_VECTORS_PATH.read_text())["master_keys"]
PRODUCTION = {
    "environment": "production",
    "admin_token": "x" * 40,
    "database_url": "postgresql://app:secret@db.internal:6543/fares",
    "key_encryption_key": base64.b64encode(bytes(range(32))).decode(),
}


def settings(**values: Any) -> Settings:
    return ExplicitSettings(**values)


def plain_file(tmp_path: Path) -> Path:
    path = tmp_path / "sam.json"
    path.write_text(json.dumps(KEYS))
    return path


def sealed_file(tmp_path: Path, kek: bytes) -> Path:
    path = tmp_path / "sam.sealed"
    path.write_bytes(seal_key_file(json.dumps(KEYS).encode(), kek=kek))
    return path


def levels(sam: SoftwareSam | None) -> list[int]:
    assert sam is not None
    return sorted(int(level) for level in sam.levels)


def test_a_plain_key_file_loads_in_local_mode_without_saying_its_form(tmp_path: Path) -> None:
    assert levels(make_sam(settings(sam_key_file=plain_file(tmp_path)))) == [1, 2, 3]


def test_a_sealed_key_file_loads_without_saying_its_form(tmp_path: Path) -> None:
    kek = settings().key_encryption_key_bytes
    assert levels(make_sam(settings(sam_key_file=sealed_file(tmp_path, kek)))) == [1, 2, 3]
    production = settings(**PRODUCTION, sam_key_file=tmp_path / "production.sealed")
    (tmp_path / "production.sealed").write_bytes(
        seal_key_file(json.dumps(KEYS).encode(), kek=production.key_encryption_key_bytes)
    )
    assert levels(make_sam(production)) == [1, 2, 3]


def test_a_plain_file_where_sealed_was_demanded_is_refused_naming_the_setting(
    tmp_path: Path,
) -> None:
    with pytest.raises(SamKeyFileUnusable) as refused:
        make_sam(settings(sam_key_file=plain_file(tmp_path), sam_key_file_sealed=True))
    message = str(refused.value)
    assert "is a plain key file, but TAPLEDGER_SAM_KEY_FILE_SEALED=true demands a sealed" in message
    assert KEYS["1"] not in message


def test_a_sealed_file_said_to_be_plain_is_refused_naming_the_setting(tmp_path: Path) -> None:
    kek = settings().key_encryption_key_bytes
    with pytest.raises(SamKeyFileUnusable, match="TAPLEDGER_SAM_KEY_FILE_SEALED=false says plain"):
        make_sam(settings(sam_key_file=sealed_file(tmp_path, kek), sam_key_file_sealed=False))


def test_a_plain_file_outside_local_mode_is_refused_even_when_its_form_was_not_said(
    tmp_path: Path,
) -> None:
    with pytest.raises(SamKeyFileUnusable, match="for local mode only: seal it"):
        make_sam(settings(**PRODUCTION, sam_key_file=plain_file(tmp_path)))


def test_a_file_of_neither_form_or_none_at_all_is_refused_naming_the_file_setting(
    tmp_path: Path,
) -> None:
    garbage = tmp_path / "sam.txt"
    garbage.write_text("level 1 = 0001...\n")
    with pytest.raises(SamKeyFileUnusable, match=r"TAPLEDGER_SAM_KEY_FILE=.*neither a JSON"):
        make_sam(settings(sam_key_file=garbage))
    with pytest.raises(SamKeyFileUnusable, match=r"TAPLEDGER_SAM_KEY_FILE=.*absent"):
        make_sam(settings(sam_key_file=tmp_path / "absent"))


def test_the_sealed_setting_is_unset_unless_the_environment_says_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TAPLEDGER_SAM_KEY_FILE_SEALED", raising=False)
    assert EnvironmentSettings().sam_key_file_sealed is None
    monkeypatch.setenv("TAPLEDGER_SAM_KEY_FILE_SEALED", "true")
    assert EnvironmentSettings().sam_key_file_sealed is True


def test_the_two_forms_are_told_apart_and_anything_else_is_neither() -> None:
    assert key_file_form(b'  {"3": "00"}\n') is KeyFileForm.PLAIN
    assert key_file_form(seal_key_file(b"{}", kek=bytes(32))) is KeyFileForm.SEALED
    with pytest.raises(KeyFileInvalid, match="neither"):
        key_file_form(b"not a key file")


def test_serve_refuses_to_start_on_a_plain_file_where_sealed_was_demanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("TAPLEDGER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TAPLEDGER_SAM_KEY_FILE", str(plain_file(tmp_path)))
    monkeypatch.setenv("TAPLEDGER_SAM_KEY_FILE_SEALED", "true")

    def no_server(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the server must not start on a refused key file")

    monkeypatch.setattr("tapledger.cli.uvicorn.Server", no_server)
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2, result.output
    assert "TAPLEDGER_SAM_KEY_FILE_SEALED=true demands a sealed one" in result.output


def test_card_seal_keys_writes_an_owner_only_file_that_loads_where_sealed_is_demanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(f"TAPLEDGER_{name.upper()}", value)
    sealed = tmp_path / "sam.sealed"
    result = CliRunner().invoke(app, ["card", "seal-keys", str(plain_file(tmp_path)), str(sealed)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(sealed.stat().st_mode) == 0o600
    assert KEYS["1"].encode() not in sealed.read_bytes()
    loaded = make_sam(settings(**PRODUCTION, sam_key_file=sealed, sam_key_file_sealed=True))
    assert levels(loaded) == [1, 2, 3]

    again = CliRunner().invoke(app, ["card", "seal-keys", str(plain_file(tmp_path)), str(sealed)])
    assert again.exit_code == 2
    assert "never overwritten" in again.output


def test_card_seal_keys_refuses_a_file_that_is_no_key_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"4": "00"}')
    result = CliRunner().invoke(app, ["card", "seal-keys", str(bad), str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "other than 1, 2 and 3" in result.output
    assert not (tmp_path / "out").exists()
