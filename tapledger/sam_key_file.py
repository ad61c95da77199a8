"""The software SAM the settings name (TAPLEDGER_SAM_KEY_FILE), in whichever form its file is.

A key file is plain JSON or sealed with the key-encryption key (`hardware.sam`), and the two
cannot be mistaken for each other, so the form is read from the file. TAPLEDGER_SAM_KEY_FILE_SEALED
only insists: `true` demands a sealed file and refuses a plain one, whatever the mode, so a
deployment that asked for sealed keys never runs on plain ones by mistake; `false` says the file
is plain. A plain file is for local mode only. Every refusal names the setting to change.
"""

from __future__ import annotations

from hardware.sam import (
    KeyFileForm,
    SamError,
    SoftwareSam,
    key_file_form,
    parse_key_file,
    read_key_file,
    unseal_key_file,
)
from tapledger.settings import Settings

KEY_FILE = "TAPLEDGER_SAM_KEY_FILE"
SEALED = "TAPLEDGER_SAM_KEY_FILE_SEALED"
KEK = "TAPLEDGER_KEY_ENCRYPTION_KEY"


class SamKeyFileUnusable(Exception):
    """The configured key file cannot serve; the message names the setting to change."""

    code = "sam_key_file_unusable"


def make_sam(settings: Settings) -> SoftwareSam | None:
    """The software SAM of this terminal or back office, if a key file is configured."""
    path = settings.sam_key_file
    if path is None:
        return None
    try:
        content = read_key_file(path)
        form = key_file_form(content)
    except (OSError, SamError) as error:
        raise SamKeyFileUnusable(f"{KEY_FILE}={path}: {error}") from None
    _check_form(settings, form)
    try:
        if form is KeyFileForm.SEALED:
            content = unseal_key_file(content, kek=settings.key_encryption_key_bytes)
        return SoftwareSam(parse_key_file(content))
    except SamError as error:
        raise SamKeyFileUnusable(f"{KEY_FILE}={path} ({form.value}): {error}") from None


def _check_form(settings: Settings, form: KeyFileForm) -> None:
    where = f"{KEY_FILE}={settings.sam_key_file}"
    demanded = settings.sam_key_file_sealed
    if form is KeyFileForm.PLAIN and demanded is True:
        raise SamKeyFileUnusable(
            f"{where} is a plain key file, but {SEALED}=true demands a sealed one: seal it with "
            f"the key-encryption key ({KEK}), or in local mode unset {SEALED} or set it to false"
        )
    if form is KeyFileForm.SEALED and demanded is False:
        raise SamKeyFileUnusable(
            f"{where} is a sealed key file, but {SEALED}=false says plain: unset {SEALED} (the "
            "form is read from the file) or set it to true"
        )
    if form is KeyFileForm.PLAIN and settings.environment != "local":
        raise SamKeyFileUnusable(
            f"{where} is a plain key file, which is for local mode only: seal it with the "
            f"key-encryption key ({KEK})"
        )
