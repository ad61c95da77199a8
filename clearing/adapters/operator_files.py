"""Reads an operator file (`clearing/operators/<city>.json`) into an `OperatorMap`.

The format: an object with `note` (free text saying which assignments were chosen and why),
`operators` (a list of `{operator_id, name, kind}`, kind `transit` or `parking`) and `networks`
(an object from the fare feed's network id to a transit operator's id). Anything else, a
duplicate operator id or a network naming an operator that is not a transit operator is refused
with `InvalidOperatorMap`.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from clearing.domain import limits
from clearing.domain.operators import InvalidOperatorMap, Operator, OperatorKind, OperatorMap

HANOI = "hanoi"
_KEYS = {"note", "operators", "networks"}
_OPERATOR_KEYS = {"operator_id", "name", "kind"}


def load_packaged(city: str = HANOI) -> OperatorMap:
    """The operator file shipped with clearing for `city`."""
    if not city.isalnum():
        raise InvalidOperatorMap(f"no operator file for {city[:40]!r}")
    text = resources.files("clearing").joinpath("operators", f"{city}.json").read_bytes()
    return parse_operator_file(text)


def load_operator_file(path: Path) -> OperatorMap:
    with path.open("rb") as file:
        data = file.read(limits.OPERATOR_FILE_BYTES_MAX + 1)
    return parse_operator_file(data)


def parse_operator_file(data: bytes) -> OperatorMap:
    if len(data) > limits.OPERATOR_FILE_BYTES_MAX:
        raise InvalidOperatorMap(
            f"an operator file is at most {limits.OPERATOR_FILE_BYTES_MAX} bytes"
        )
    try:
        document: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidOperatorMap(f"not a JSON document: {error}") from None
    if not isinstance(document, dict) or set(document) != _KEYS:
        raise InvalidOperatorMap(f"an operator file is an object with exactly {sorted(_KEYS)}")
    rows, networks = document["operators"], document["networks"]
    if not isinstance(rows, list) or not isinstance(networks, dict):
        raise InvalidOperatorMap("`operators` is a list and `networks` an object")
    operators: dict[str, Operator] = {}
    for row in rows[: limits.OPERATORS_MAX + 1]:
        operator = _operator(row)
        if operator.operator_id in operators:
            raise InvalidOperatorMap(f"operator {operator.operator_id!r} is listed twice")
        operators[operator.operator_id] = operator
    if not all(isinstance(key, str) and isinstance(value, str) for key, value in networks.items()):
        raise InvalidOperatorMap("`networks` maps network ids to operator ids, both strings")
    return OperatorMap(operators, dict(networks))


def _operator(row: object) -> Operator:
    if not isinstance(row, dict) or set(row) != _OPERATOR_KEYS:
        raise InvalidOperatorMap(f"an operator is an object with exactly {sorted(_OPERATOR_KEYS)}")
    operator_id, name, kind = row["operator_id"], row["name"], row["kind"]
    if not isinstance(operator_id, str) or not isinstance(name, str):
        raise InvalidOperatorMap("an operator's id and name are strings")
    try:
        return Operator(operator_id, name, OperatorKind(kind))
    except ValueError:
        raise InvalidOperatorMap(f"operator {operator_id!r}: kind is transit or parking") from None
