"""The code's own rules, checked by the test suite: import contracts, ruff, mypy --strict."""

from __future__ import annotations

import ast
import os
import shutil
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


PACKAGES = ("hardware", "ticketing", "validators", "parking", "clearing", "tapledger", "loadtests")
CONTEXTS = ("accounts", "cards", "taps", "journeys")


def _copy_of_the_code(into: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, into / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")
    return into


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # a domain reaching up into its own context's use cases
        (
            "ticketing/journeys/domain/journey.py",
            "import ticketing.journeys.application.charges",
            "inside a context",
        ),
        # a lower context reaching up into a higher one
        (
            "ticketing/accounts/application/ledger.py",
            "import ticketing.cards.application.card_issuer",
            "depend one way",
        ),
        # a domain importing a web framework
        ("ticketing/cards/domain/smart_card.py", "import fastapi", "domains are pure"),
    ],
)
def test_import_linter_reports_a_deliberately_broken_import(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    code = _copy_of_the_code(tmp_path)
    broken = code / module
    broken.write_text(broken.read_text() + f"\n{line}  # noqa\n")
    result = subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"],
        cwd=code,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S,
        check=False,
        env={**os.environ, "PYTHONPATH": str(code)},
    )
    assert result.returncode != 0
    broken_lines = [row for row in result.stdout.splitlines() if "BROKEN" in row]
    assert broken_lines, result.stdout
    assert contract in result.stdout.split("Broken contracts")[-1]


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


MODULE_LINES_MAX = 500
FUNCTION_LINES_MAX = 80
TICKETING_PACKAGES = {*CONTEXTS, "fares", "tl1", "shared"}


def _sources() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_no_module_outside_the_tests_is_longer_than_500_lines() -> None:
    long_modules = {
        str(path.relative_to(ROOT)): lines
        for path in _sources()
        if (lines := path.read_text().count("\n")) > MODULE_LINES_MAX
    }
    assert long_modules == {}


def test_no_function_outside_the_tests_is_longer_than_80_lines() -> None:
    long_functions = {
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name}": lines
        for path in _sources()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (lines := (node.end_lineno or node.lineno) - node.lineno + 1) > FUNCTION_LINES_MAX
    }
    assert long_functions == {}


def test_ticketing_holds_its_contexts_and_their_shared_package_and_nothing_else() -> None:
    ticketing = ROOT / "ticketing"
    assert sorted(p.name for p in ticketing.glob("*.py")) == ["__init__.py"]
    packages = {p.name for p in ticketing.iterdir() if (p / "__init__.py").exists()}
    assert packages == TICKETING_PACKAGES


@pytest.mark.parametrize("context", CONTEXTS)
def test_each_context_has_a_domain_use_cases_adapters_and_an_api(context: str) -> None:
    package = ROOT / "ticketing" / context
    assert (package / "domain" / "__init__.py").exists()
    assert (package / "application" / "__init__.py").exists()
    assert (package / "adapters" / "__init__.py").exists()
    assert (package / "api.py").exists()
