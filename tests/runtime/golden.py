"""Golden vectors of the state transition: a fixed genesis and blocks, their roots and receipts.

Run as a script (`python -m tests.runtime.golden`) it prints the vectors as JSON, so
tests/runtime/test_golden.py can compare processes started with different
PYTHONHASHSEED values against the pinned figures.
"""

from __future__ import annotations

import json
from pathlib import Path

from chain.genesis import load_genesis
from chain.state.tree import EMPTY_ROOT, StateTree
from runtime.executive import apply_block, check_transaction, transaction_rules
from runtime.hashing import blake2b_256
from runtime.primitives import BlockContext
from runtime.state import MemoryState
from tests.runtime.helpers import ACCOUNTS, genesis_state, transfer

GENESIS_FILE = Path(__file__).resolve().parents[2] / "genesis.json"


class _Nodes(dict):
    """A dict as the tree's node store and write batch."""

    def put(self, key: bytes, value: bytes) -> None:
        self[key] = value


def _blocks() -> list[list[bytes]]:
    """Three blocks: transfers, one to a new account, a failing one, one below the deposit."""
    alice, bob, charlie, newcomer = ACCOUNTS[1], ACCOUNTS[2], ACCOUNTS[3], ACCOUNTS[5]
    return [
        [transfer(alice, bob.public_key, 5_000_000, nonce=0), transfer(bob, charlie.public_key, 7, nonce=0)],
        [transfer(alice, newcomer.public_key, 2_000_000, nonce=1), transfer(charlie, alice.public_key, 10**18, nonce=0)],
        [transfer(newcomer, alice.public_key, 1, nonce=0, fee=20_000), transfer(alice, alice.public_key, 3, nonce=2)],
    ]


def vectors() -> dict[str, str]:
    """Hex digests that every machine and process must reproduce."""
    out = {"genesis_json_hash": load_genesis(GENESIS_FILE).hash.hex()}
    nodes = _Nodes()
    tree = StateTree(nodes)
    state: MemoryState = genesis_state()
    root = tree.update(EMPTY_ROOT, dict(state.items), nodes)
    out["genesis_state_root"] = root.hex()
    rules = transaction_rules(state)
    for number, raws in enumerate(_blocks(), start=1):
        block = BlockContext(number, 1_700_000_000_000 + 1000 * number, ACCOUNTS[0].public_key)
        writes, receipts = apply_block(state, block, [check_transaction(raw, rules) for raw in raws], rules)
        changes = writes.changes()
        state.apply(changes)
        root = tree.update(root, changes, nodes)
        out[f"block_{number}_state_root"] = root.hex()
        out[f"block_{number}_receipts_hash"] = blake2b_256(receipts.SerializeToString(deterministic=True)).hex()
    return out


if __name__ == "__main__":
    print(json.dumps(vectors(), sort_keys=True))
