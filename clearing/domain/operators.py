"""Who earns what: the operators clearing pays, and which transit network each one runs.

A journey's legs name the fare feed's networks (`bus_10k`, `metro_2a`), not an operator (gap 1
of docs/money-map.md), so clearing reads the operator of a network from this map. Parking
operators are registered in the parking store and their ids are used as they are; the map
lists the ones clearing settles, so an operator it does not know is carved out to suspense
rather than paid without bank details or a commission rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from clearing.domain import limits
from clearing.domain.errors import ClearingError
from clearing.domain.positions import check_operator_id


class OperatorKind(StrEnum):
    TRANSIT = "transit"
    PARKING = "parking"


@dataclass(frozen=True, slots=True)
class Operator:
    operator_id: str
    name: str
    kind: OperatorKind


@dataclass(frozen=True, slots=True)
class OperatorMap:
    """The operators by id, and the operator of each transit network by the feed's network id."""

    operators: Mapping[str, Operator]
    networks: Mapping[str, str]

    def __post_init__(self) -> None:
        if len(self.operators) > limits.OPERATORS_MAX:
            raise InvalidOperatorMap(
                f"{len(self.operators)} operators, at most {limits.OPERATORS_MAX}"
            )
        if len(self.networks) > limits.NETWORKS_MAX:
            raise InvalidOperatorMap(
                f"{len(self.networks)} networks, at most {limits.NETWORKS_MAX}"
            )
        for operator_id, operator in self.operators.items():
            check_operator_id(operator_id)
            if operator.operator_id != operator_id:
                raise InvalidOperatorMap(f"operator {operator_id!r} is filed under another id")
            if not 0 < len(operator.name) <= limits.PARTY_NAME_MAX_CHARS:
                raise InvalidOperatorMap(f"operator {operator_id!r}: a name of 1..140 characters")
        for network_id, operator_id in self.networks.items():
            if not 0 < len(network_id) <= limits.NETWORK_ID_MAX_CHARS:
                raise InvalidOperatorMap(f"network id {network_id[:80]!r} is empty or too long")
            runs = self.operators.get(operator_id)
            if runs is None or runs.kind is not OperatorKind.TRANSIT:
                raise InvalidOperatorMap(
                    f"network {network_id!r} names {operator_id!r}, not a transit operator"
                )

    def operator_of_network(self, network_id: str) -> str | None:
        """The operator of a transit network; None when the map has no operator for it."""
        return self.networks.get(network_id)

    def parking_operator(self, operator_id: str) -> str | None:
        """A parking operator's id as it is, when clearing knows it; None otherwise."""
        operator = self.operators.get(operator_id)
        if operator is None or operator.kind is not OperatorKind.PARKING:
            return None
        return operator_id


class InvalidOperatorMap(ClearingError):
    """An operator file that does not describe operators and networks as documented."""

    code = "operator_map_invalid"
