"""TAPLEDGER_FARE_FEED_DIR: an operator's own fare feed, checked whole before anything starts."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tapledger.cli import app
from tapledger.fare_feed import FareFeedUnusable, load_fares
from tapledger.settings import Settings
from tests.builders.settings import EnvironmentSettings
from ticketing.fares.loader import HANOI_FEED_DIR

OWN_FEED = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nt,Tram,https://t.example,"
    "Europe/Lisbon\n",
    "routes.txt": "route_id,route_short_name,network_id\n28,28E,tram\n",
    "fare_products.txt": "fare_product_id,amount,currency\nsingle,30000,VND\n",
    "fare_leg_rules.txt": "network_id,fare_product_id\ntram,single\n",
}


def settings(**values: Any) -> Settings:
    return EnvironmentSettings(**values)


def write_feed(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def test_fare_feed_defaults_to_the_built_in_hanoi_feed() -> None:
    assert settings().fare_feed_dir == HANOI_FEED_DIR
    engine = load_fares(settings())
    assert "bus_monthly_all_routes" in engine.feed.passes


def test_fare_feed_dir_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAPLEDGER_FARE_FEED_DIR", str(tmp_path))
    assert settings().fare_feed_dir == tmp_path


def test_fares_are_priced_with_the_operators_own_feed(tmp_path: Path) -> None:
    engine = load_fares(settings(fare_feed_dir=write_feed(tmp_path / "lisbon", OWN_FEED)))
    assert dict(engine.feed.route_networks) == {"28": "tram"}
    assert engine.timezone.key == "Europe/Lisbon"


@pytest.mark.parametrize(
    ("files", "where", "why"),
    [
        pytest.param(None, "lisbon", "does not exist", id="no-directory"),
        pytest.param(
            {k: v for k, v in OWN_FEED.items() if k != "fare_leg_rules.txt"},
            "lisbon/fare_leg_rules.txt",
            "required file is missing",
            id="required-file-missing",
        ),
        pytest.param(
            OWN_FEED | {"fare_products.txt": "fare_product_id,amount,currency\nsingle,1.5,VND\n"},
            "lisbon/fare_products.txt, line 2, field amount",
            "'1.5' is not a whole number of VND",
            id="bad-row",
        ),
    ],
)
def test_unusable_fare_feed_is_refused_naming_the_setting_file_line_and_why(
    tmp_path: Path, files: dict[str, str] | None, where: str, why: str
) -> None:
    directory = tmp_path / "lisbon"
    if files is not None:
        write_feed(directory, files)
    with pytest.raises(FareFeedUnusable) as error:
        load_fares(settings(fare_feed_dir=directory))
    message = str(error.value)
    assert message.startswith("TAPLEDGER_FARE_FEED_DIR: ")
    assert f"{tmp_path}/{where}" in message
    assert message.endswith(why)


def test_a_directory_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "feed.zip"
    not_a_directory.write_bytes(b"PK")
    with pytest.raises(FareFeedUnusable, match="is not a directory"):
        load_fares(settings(fare_feed_dir=not_a_directory))


def test_serve_refuses_to_start_on_an_unusable_fare_feed_before_opening_any_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = shutil.copytree(HANOI_FEED_DIR, tmp_path / "feed")
    (feed / "fare_leg_rules.txt").unlink()
    data_dir = tmp_path / "data"
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("TAPLEDGER_DATA_DIR", str(data_dir))
    monkeypatch.setenv("TAPLEDGER_FARE_FEED_DIR", str(feed))

    def no_server(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the server must not start on an unusable fare feed")

    monkeypatch.setattr("tapledger.cli.uvicorn.Server", no_server)

    result = CliRunner().invoke(app, ["serve"])

    assert result.exit_code == 2, result.output
    assert "TAPLEDGER_FARE_FEED_DIR" in result.output
    assert "fare_leg_rules.txt" in result.output
    assert "required file is missing" in result.output
    assert not data_dir.exists()
