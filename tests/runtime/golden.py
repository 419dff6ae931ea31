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


def market_vectors() -> dict[str, str]:
    """State roots and receipts of a market round: bond, offer, post, commit, reveal, settle, release."""
    from proto import types_pb2
    from proto.digest import logprobs_digest
    from runtime import jobs, system
    from tests.runtime.market import MODEL_ID, POSTER, Market

    out = {}
    market = Market.create()
    nodes = _Nodes()
    tree = StateTree(nodes)
    root = tree.update(EMPTY_ROOT, dict(market.state.items), nodes)

    def record(name: str, raws: list[bytes]) -> None:
        nonlocal root
        before = dict(market.state.items)
        receipts = market.block(raws)
        after = market.state.items
        changes = {key: after.get(key) for key in set(before) | set(after) if before.get(key) != after.get(key)}
        root = tree.update(root, changes, nodes)
        out[f"market_{name}_state_root"] = root.hex()
        out[f"market_{name}_receipts_hash"] = blake2b_256(receipts.SerializeToString(deterministic=True)).hex()

    newcomer = ACCOUNTS[5]
    record("bond", [market.transaction(newcomer, bond=types_pb2.Bond(amount=2 * 10**12, validate=True))])
    offer = types_pb2.SetOffer(models=[MODEL_ID], price_per_token=1_500, region="eu", capacity=2)
    record("offer", [market.transaction(newcomer, set_offer=offer)])
    post = types_pb2.PostJob(model=MODEL_ID, prompt="golden", prompt_format="chat", max_tokens=4,
                             sampling=types_pb2.Sampling(temperature_milli=700, top_k=40, top_p_ppm=950_000, seed=9),
                             max_price_per_token=2_500, redundancy=2, region="eu")
    chain = system.read_chain(market.state)
    job_id = jobs.job_id(chain.genesis_hash, POSTER.public_key, system.read_account(market.state, POSTER.public_key).nonce)
    record("post", [market.transaction(POSTER, post_job=post)])
    # The job's executors are drawn assignment_delay_blocks after the post (docs/protocol.md, "Assignment").
    for index in range(market.job(job_id).draw_height - market.height):
        record(f"draw_{index}", [])
    job = market.job(job_id)
    executors = market.executors_of(job_id)
    result = dict(prompt_tokens=11, tokens=[7, 8, 2], text="hey", logprobs_micronats=[-5, -6, -7], stop_reason="eos")
    digest = jobs.output_digest(job, 11, result["tokens"], result["text"], "eos")
    salt = bytes(range(32))
    record("commit", [market.transaction(account, commit_result=types_pb2.CommitResult(
        job_id=job_id, commitment=jobs.commitment(job_id, account.public_key, salt, digest,
                                                  logprobs_digest(result["logprobs_micronats"])))) for account in executors])
    record("reveal", [market.transaction(account, reveal_result=types_pb2.RevealResult(job_id=job_id, salt=salt, **result))
                      for account in executors])
    for index in range(6):
        record(f"after_{index}", [])
    return out


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
    print(json.dumps({**vectors(), **market_vectors()}, sort_keys=True))
