"""The fares package is pure: it imports only the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import ticketing.fares

PACKAGE_DIR = Path(ticketing.fares.__file__).parent
OWN_PACKAGE = "ticketing.fares"


def imported_modules(source: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def test_fares_package_imports_only_the_standard_library_and_itself() -> None:
    sources = sorted(PACKAGE_DIR.glob("*.py"))
    assert len(sources) > 1
    foreign = {
        f"{source.name}: {module}"
        for source in sources
        for module in imported_modules(source)
        if module != OWN_PACKAGE
        and not module.startswith(f"{OWN_PACKAGE}.")
        and module.split(".")[0] not in sys.stdlib_module_names
    }
    assert foreign == set()


def test_purity_check_notices_a_foreign_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import sqlalchemy\nfrom ticketing.fares import feed\n", encoding="utf-8")
    modules = imported_modules(probe)
    assert "sqlalchemy" in modules
    assert "sqlalchemy" not in sys.stdlib_module_names
