"""Properties that hold after every block; checked by property tests and `inferchain` diagnostics."""

from __future__ import annotations

from typing import Iterable

from proto import state_pb2
from runtime import system
from runtime.state import StateReader


def account_total(items: Iterable[tuple[bytes, bytes]]) -> int:
    """The sum of free and reserved balances over every stored account."""
    total = 0
    for key, value in items:
        if key.startswith(system.ACCOUNT_PREFIX):
            account = state_pb2.AccountInfo.FromString(value)
            total += account.free + account.reserved
    return total


def supply_is_conserved(state: StateReader, items: Iterable[tuple[bytes, bytes]]) -> bool:
    """Total issuance equals all balances plus what was burned, minus what was minted (DESIGN.md section 3)."""
    supply = system.read_supply(state)
    return supply.total_issuance == account_total(items) + supply.burned - supply.minted
