"""The code's own rules, checked by the test suite: import contracts, ruff, mypy --strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOOL_TIMEOUT_S = 300


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
    )


def test_packages_follow_the_import_rules_of_the_design() -> None:
    result = run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_import_linter_reports_a_broken_contract(tmp_path: Path) -> None:
    # The ledger's domain does import eventsourcing; a contract forbidding it must fail,
    # which shows the checker really reads our packages.
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["ticketing"]\ninclude_external_packages = true\n'
        '[[tool.importlinter.contracts]]\nname = "probe"\ntype = "forbidden"\n'
        'source_modules = ["ticketing.domain"]\nforbidden_modules = ["eventsourcing"]\n'
    )
    result = run(str(BIN / "lint-imports"), "--no-cache", "--config", str(config))
    assert result.returncode != 0
    assert "BROKEN" in result.stdout.upper()


def test_ruff_finds_nothing() -> None:
    result = run(str(BIN / "ruff"), "check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_formatted_by_ruff() -> None:
    result = run(str(BIN / "ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(TOOL_TIMEOUT_S)
def test_mypy_strict_finds_nothing() -> None:
    result = run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr
