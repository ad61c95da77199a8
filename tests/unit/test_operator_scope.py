"""Operator tokens scoped to one operator's clearing: stored and read back with their scope,
added to a token table made before scopes existed, refused on any other role, and what the
scope lets such a token see of clearing (clearing.domain.visibility) and of nothing else."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import Engine, create_engine, inspect, text

from clearing.domain.visibility import OperatorOutOfScope, Viewer
from tapledger.auth import TokenStore
from tapledger.web.pages import STATIC_DIR
from ticketing.shared.access import OutOfScope, Principal, Role, is_staff, require_role

METRO, BUS = "hanoi-metro", "transerco"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    built = create_engine(f"sqlite:///{tmp_path / 'tokens.db'}")
    yield built
    built.dispose()


def test_a_scoped_operator_token_authenticates_with_its_operator(engine: Engine) -> None:
    tokens = TokenStore(engine)
    tokens.create_tables()

    issued = tokens.issue(Role.OPERATOR, operator_id=METRO, label="metro finance")

    assert issued.principal.operator_id == METRO
    assert TokenStore(engine).authenticate(issued.token) == issued.principal
    assert [info.operator_id for info in tokens.tokens()] == [METRO]


def test_a_token_table_made_before_scopes_gains_the_operator_column(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE api_tokens (token_sha256 VARCHAR(64) PRIMARY KEY, "
                "token_id VARCHAR(16) NOT NULL UNIQUE, role VARCHAR(16) NOT NULL, "
                "account_id CHAR(32), device_id BIGINT, label VARCHAR(80) NOT NULL, "
                "created_at DATETIME NOT NULL, revoked_at DATETIME)"
            )
        )
    tokens = TokenStore(engine)

    tokens.create_tables()

    columns = {c["name"] for c in inspect(engine).get_columns("api_tokens")}
    assert "operator_id" in columns
    issued = tokens.issue(Role.OPERATOR, operator_id=BUS)
    assert tokens.authenticate(issued.token) == issued.principal


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        (Role.ADMIN, {}),
        (Role.RIDER, {"account_id": UUID(int=1)}),
        (Role.VALIDATOR, {"device_id": 7}),
    ],
)
def test_only_an_operator_token_names_an_operator(
    engine: Engine, role: Role, scope: dict[str, Any]
) -> None:
    tokens = TokenStore(engine)
    tokens.create_tables()

    with pytest.raises(ValueError, match="only an operator token names an operator"):
        tokens.issue(role, operator_id=METRO, **scope)


def test_an_empty_operator_scope_is_refused(engine: Engine) -> None:
    tokens = TokenStore(engine)
    tokens.create_tables()

    with pytest.raises(ValueError, match="operator"):
        tokens.issue(Role.OPERATOR, operator_id="")


def test_a_scoped_principal_passes_no_role_check_and_is_not_staff() -> None:
    scoped = Principal(token_id="t", role=Role.OPERATOR, operator_id=METRO)
    plain = Principal(token_id="u", role=Role.OPERATOR)

    with pytest.raises(OutOfScope):
        require_role(scoped, Role.ADMIN, Role.OPERATOR)
    require_role(plain, Role.ADMIN, Role.OPERATOR)
    assert not is_staff(scoped)
    assert is_staff(plain)


def test_staff_see_every_operator_every_line_and_every_file() -> None:
    staff = Viewer()

    assert staff.sees(BUS)
    assert staff.lines_of(None) is None
    assert staff.lines_of(BUS) == BUS
    assert staff.sees_file("positions.csv")


def test_an_operator_sees_its_own_lines_and_two_files_only() -> None:
    metro = Viewer(METRO)

    assert metro.sees(METRO)
    assert not metro.sees(BUS)
    assert metro.lines_of(None) == METRO
    assert metro.lines_of(METRO) == METRO
    visible = [
        name
        for name in (
            f"lines-{METRO}.csv",
            f"statement-{METRO}.csv",
            f"lines-{BUS}.csv",
            f"statement-{BUS}.csv",
            "positions.csv",
            "suspense.csv",
            "SHA256SUMS",
            "TL-20261123-000001.xml",
        )
        if metro.sees_file(name)
    ]
    assert visible == [f"lines-{METRO}.csv", f"statement-{METRO}.csv"]


def test_an_operator_asking_for_another_operators_lines_is_refused() -> None:
    with pytest.raises(OperatorOutOfScope) as refused:
        Viewer(METRO).lines_of(BUS)

    assert refused.value.code == "clearing_operator_out_of_scope"


def test_every_static_file_of_the_pages_ships_in_the_package() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["tapledger.web"]
    package = STATIC_DIR.parent
    shipped = {path for pattern in patterns for path in package.glob(pattern) if path.is_file()}

    files = {path for path in STATIC_DIR.rglob("*") if path.is_file()}

    assert files - shipped == set()
    assert STATIC_DIR / "vendor" / "uplot" / "uPlot.iife.min.js" in shipped
