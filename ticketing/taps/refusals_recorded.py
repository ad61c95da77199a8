"""The tap routes' record of uploads refused whole: a device uploading as another validator, or a
revoked validator's upload. The refusal is recorded with its reason (`DeviceRefusal`), then
answered as before; the device keeps its taps in its outbox, so none is lost."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial

from starlette.concurrency import run_in_threadpool

from ticketing.shared.access import NotThisDevice, Principal
from ticketing.taps.application.validator_registry import ValidatorRegistry
from ticketing.taps.domain.validator import ValidatorRevoked


@asynccontextmanager
async def refusals_recorded(
    registry: ValidatorRegistry,
    principal: Principal,
    validator_id: int,
    epoch: int,
    seqs: Sequence[int],
) -> AsyncIterator[None]:
    """Records the refusal an upload in this block ends in, then lets it through."""
    try:
        yield
    except (NotThisDevice, ValidatorRevoked) as error:
        code = "not_this_device" if isinstance(error, NotThisDevice) else error.code
        record = partial(
            registry.refuse_upload,
            code,
            validator_id=validator_id,
            token_validator_id=principal.device_id or 0,
            token_id=principal.token_id,
            epoch=epoch,
            seqs=seqs,
        )
        await run_in_threadpool(record)
        raise
