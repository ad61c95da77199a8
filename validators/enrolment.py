"""A device's enrolment: it exchanges the one-time code staff gave it for its own token, and keeps
the token where `validator run` reads it, so no secret is copied by hand.

The token goes to `DEVICE_TOKEN_FILE` in the state directory (readable by the device's user
only, written whole or not at all), the validator's id and epoch to `ENROLMENT_FILE` beside it,
and the outbox takes the new epoch at once, so a tap decided before the first sync is numbered in
it rather than in an epoch another device used.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketing.shared.access import TOKEN_MAX_CHARS
from validators.backend import BackendUnavailable
from validators.device import OUTBOX_FILE
from validators.http_backend import HttpBackend, json_object
from validators.outbox import Outbox

DEVICE_TOKEN_FILE = "device.token"  # noqa: S105 (a file's name, not a secret)
ENROLMENT_FILE = "enrolment.json"
TOKEN_FILE_MODE = 0o600
ENROLMENT_FILE_MAX_BYTES = 4096


@dataclass(frozen=True)
class Enrolled:
    validator_id: int
    epoch: int
    token_file: Path


def enrol_device(
    server: str, code: str, state_dir: Path, *, backend: HttpBackend | None = None
) -> Enrolled:
    """Exchanges `code` (`POST /v1/enrolments`) and stores what the device needs to run.
    Raises `BackendRefused` (the code's reason: used, expired, unknown), `BackendUnavailable`,
    or `StateOfAnotherValidator` (nothing stored; the code is spent)."""
    client = backend if backend is not None else HttpBackend(server, None)
    try:
        answer = json_object(client.send("POST", "/enrolments", json={"code": code}))
    finally:
        if backend is None:
            client.close()
    validator_id, epoch, token = _enrolment(answer)
    earlier = enrolled_validator_id(state_dir)
    if earlier is not None and earlier != validator_id:
        # Its outbox's taps are validator `earlier`'s: sent under another id they would be lost.
        raise StateOfAnotherValidator(state_dir, earlier, validator_id)
    state_dir.mkdir(parents=True, exist_ok=True)
    token_file = state_dir / DEVICE_TOKEN_FILE
    _write_whole(token_file, token + "\n", TOKEN_FILE_MODE)
    record = {"validator_id": validator_id, "epoch": epoch, "server": server}
    _write_whole(state_dir / ENROLMENT_FILE, json.dumps(record) + "\n", TOKEN_FILE_MODE)
    outbox = Outbox(state_dir / OUTBOX_FILE)
    try:
        outbox.enrol(epoch)
    finally:
        outbox.close()
    return Enrolled(validator_id, epoch, token_file)


def enrolled_validator_id(state_dir: Path) -> int | None:
    """The validator id `enrol_device` stored in `state_dir`, or None if it never ran there."""
    try:
        text = (state_dir / ENROLMENT_FILE).read_text()[:ENROLMENT_FILE_MAX_BYTES]
        validator_id = json.loads(text).get("validator_id")
    except (OSError, ValueError, AttributeError):
        return None
    return validator_id if type(validator_id) is int and validator_id > 0 else None


def _enrolment(answer: dict[str, Any]) -> tuple[int, int, str]:
    validator_id, epoch, token = (answer.get(k) for k in ("validator_id", "epoch", "token"))
    if (
        type(validator_id) is not int
        or type(epoch) is not int
        or not isinstance(token, str)
        or not 0 < len(token) <= TOKEN_MAX_CHARS
    ):
        raise BackendUnavailable("/enrolments: the answer is not an enrolment")
    return validator_id, epoch, token


def _write_whole(path: Path, text: str, mode: int) -> None:
    """Writes `path` in full or leaves it as it was (a new file, synced, then renamed)."""
    temporary = path.with_name(path.name + ".new")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(descriptor, mode)  # a file left by an earlier attempt keeps no wider mode
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


class StateOfAnotherValidator(Exception):
    code = "state_of_another_validator"

    def __init__(self, state_dir: Path, earlier: int, validator_id: int) -> None:
        super().__init__(
            f"{state_dir} holds validator {earlier}'s state, and this code enrolled validator"
            f" {validator_id}: give another --state-dir, and staff a new code"
        )
