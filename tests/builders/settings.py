"""Settings for a test: what it passes, over the defaults, and nothing from the environment."""

from __future__ import annotations

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from tapledger.settings import Settings


class ExplicitSettings(Settings):
    """Settings from the values a test passes and the defaults, never from `.env` or the
    process environment, so a developer's `TAPLEDGER_*` cannot change what a test runs on."""

    # pydantic-settings' hook passes every source; keeping only the first drops the others.
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],  # noqa: ARG003
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


class EnvironmentSettings(Settings):
    """Settings from the values a test passes and the process environment (which the test sets
    with `monkeypatch`), never from `.env`: for the tests of how settings are read."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],  # noqa: ARG003
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)
