"""`tapledger validator enrolment-code` and `tapledger validator revoke`: staff's side of a
device's life on the command line, on the store the settings name."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tapledger.bootstrap import bootstrap
from tapledger.cli import app
from tests.builders.settings import ExplicitSettings
from ticketing.taps.domain.enrolment_code import EnrolmentCodeRevoked

BUS = 17


def test_staff_make_a_code_that_enrols_once_and_revoke_the_validator_and_its_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAPLEDGER_DATA_DIR", str(tmp_path))
    container = bootstrap(ExplicitSettings(data_dir=tmp_path))
    container.taps.register_validator(validator_id=BUS, kind="bus", network_id=1, location=1)
    token = container.tokens.issue_device_token(BUS, label="bus 17")
    container.close()

    made = CliRunner().invoke(app, ["validator", "enrolment-code", str(BUS)])
    assert made.exit_code == 0, made.output
    code = made.output.splitlines()[0]
    revoked = CliRunner().invoke(app, ["validator", "revoke", str(BUS)])
    assert revoked.exit_code == 0, revoked.output
    assert f"validator {BUS} revoked; 1 valid tokens revoked" in revoked.output
    unknown = CliRunner().invoke(app, ["validator", "revoke", "99"])
    assert (unknown.exit_code, "no validator 99" in unknown.output) == (2, True)

    after = bootstrap(ExplicitSettings(data_dir=tmp_path))
    try:
        assert after.tokens.authenticate(token) is None
        assert after.taps.get_validator(BUS, fresh=True).revoked
        # The code was made before the revocation: it cannot let the stolen device back.
        with pytest.raises(EnrolmentCodeRevoked):
            after.taps.exchange_enrolment_code(code)
    finally:
        after.close()
