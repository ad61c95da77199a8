"""`tapledger demo`, the main job, runs every path end to end and checks itself."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from tapledger.demo import run_demo


def test_the_demo_runs_every_path_and_its_own_checks_pass(tmp_path: Path) -> None:
    out = io.StringIO()
    # run_demo raises typer.Exit(1) when any of its own checks fails.
    run_demo(Console(file=out, width=160), data_dir=tmp_path / "demo")
    text = out.getvalue()
    assert "transfer_conflict" in text  # the forged top-up callback was refused
    assert "accepted" in text
    assert "code_replayed" in text
    assert "card_denied" in text  # the stolen phone
    assert "retap_after_tear" in text  # the torn smart-card tap
    assert "22,000" in text  # Lan's bus + metro journey with the transfer discount
    assert "read models agree with the accounts: yes" in text
    assert "identical: yes" in text
