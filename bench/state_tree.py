"""State tree throughput against the raw blake2b rate measured in the same run.

    python bench/state_tree.py [--seconds N] [--quick] [--keys N] [--block-keys N]

Builds a tree of --keys accounts in a temporary LevelDB, then applies blocks of --block-keys changed
keys (mostly updates, some inserts and deletes) for --seconds, writing each block's batch. Reports
changed keys per second, node hashes per changed key, and the same figures as ratios of the raw hash
rate, so that runs on machines of different speed compare. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import plyvel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.state.proof import verify_proof  # noqa: E402
from chain.state.tree import EMPTY_ROOT, StateTree  # noqa: E402

VALUE_SIZE = 80  # about an encoded account record


def raw_hashes_per_second(seconds: float) -> float:
    """blake2b-256 of 65-byte inputs (one tree node) per second, from Python, as the tree calls it."""
    data = bytes(65)
    blake2b = hashlib.blake2b
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(10_000):
            blake2b(data, digest_size=32).digest()
        done += 10_000
    return done / (time.perf_counter() - start)


def account_key(index: int) -> bytes:
    return b"balances/account/%d" % index


def account_value(index: int, version: int) -> bytes:
    return (b"%d:%d:" % (index, version)).ljust(VALUE_SIZE, b"\x00")


def block_changes(rng: random.Random, block: int, state_keys: int, block_keys: int, next_key: int) -> tuple[dict, int]:
    """Changes of one block: 90% updates of existing accounts, 5% new accounts, 5% deletions."""
    changes: dict[bytes, bytes | None] = {}
    while len(changes) < block_keys:
        roll = rng.random()
        if roll < 0.05:
            changes[account_key(next_key)] = account_value(next_key, block)
            next_key += 1
        elif roll < 0.10:
            changes[account_key(rng.randrange(state_keys))] = None
        else:
            index = rng.randrange(state_keys)
            changes[account_key(index)] = account_value(index, block)
    return changes, next_key


def run(seconds: float, state_keys: int, block_keys: int, cache_size: int) -> dict:
    raw_rate = raw_hashes_per_second(min(1.0, seconds / 10))
    with tempfile.TemporaryDirectory() as path:
        db = plyvel.DB(path, create_if_missing=True)
        tree = StateTree(db, cache_size=cache_size)
        start = time.perf_counter()
        batch = db.write_batch()
        root = tree.update(EMPTY_ROOT, {account_key(i): account_value(i, 0) for i in range(state_keys)}, batch)
        batch.write()
        genesis_s = time.perf_counter() - start

        rng = random.Random(7)
        next_key = state_keys
        blocks = changed = hashes = reads = 0
        update_s = write_s = 0.0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or blocks == 0:
            changes, next_key = block_changes(rng, blocks + 1, state_keys, block_keys, next_key)
            before, reads_before = tree.node_hashes, tree.node_reads
            batch = db.write_batch()
            started = time.perf_counter()
            root = tree.update(root, changes, batch)
            updated = time.perf_counter()
            batch.write()
            write_s += time.perf_counter() - updated
            update_s += updated - started
            hashes += tree.node_hashes - before
            reads += tree.node_reads - reads_before
            changed += len(changes)
            blocks += 1

        sample = [account_key(rng.randrange(next_key)) for _ in range(1000)]
        started = time.perf_counter()
        answers = [tree.get_with_proof(root, key) for key in sample]
        prove_s = time.perf_counter() - started
        started = time.perf_counter()
        verified = sum(verify_proof(root, key, value, proof) for key, (value, proof) in zip(sample, answers))
        verify_s = time.perf_counter() - started
        db.close()
    assert verified == len(sample), "a proof of the benchmark failed to verify"

    keys_per_s = changed / update_s
    hashes_per_key = hashes / changed
    return {
        "bench": "state_tree",
        "state_keys": state_keys,
        "block_keys": block_keys,
        "blocks": blocks,
        "genesis_s": round(genesis_s, 3),
        "update_ms_per_block": round(update_s / blocks * 1000, 2),
        "write_ms_per_block": round(write_s / blocks * 1000, 2),
        "changed_keys_per_s": round(keys_per_s),
        "node_hashes_per_changed_key": round(hashes_per_key, 2),
        "log2_state_keys": round(math.log2(state_keys), 2),
        "disk_reads_per_changed_key": round(reads / changed, 2),
        "cache_size": cache_size,
        "raw_hashes_per_s": round(raw_rate),
        # The tree's time per changed key, in raw-hash units: the Python overhead on top of hashing.
        "raw_hash_times_per_changed_key": round(raw_rate / keys_per_s, 1),
        # The part of update time spent in node hashes: the rest is Python bookkeeping and disk reads.
        "hashing_share_of_update": round(hashes / raw_rate / update_s, 3),
        # What hashing alone would allow a plain 256-level sparse Merkle tree (DESIGN.md section 4).
        "keys_per_s_of_256_level_hashing_alone": round(raw_rate / 256),
        "proofs_per_s": round(len(sample) / prove_s),
        "verifications_per_s": round(len(sample) / verify_s),
        "proof_bytes_average": round(sum(len(proof.SerializeToString()) for _, proof in answers) / len(answers)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="time spent applying blocks (default 10)")
    parser.add_argument("--quick", action="store_true", help="small sizes, about two seconds")
    parser.add_argument("--keys", type=int, help="accounts in the state (default 100000, quick 10000)")
    parser.add_argument("--block-keys", type=int, help="changed keys per block (default 2000, quick 500)")
    parser.add_argument("--cache-size", type=int, default=100_000, help="StateTree cache_size (default 100000)")
    args = parser.parse_args()
    seconds = 1.0 if args.quick and args.seconds == 10.0 else args.seconds
    state_keys = args.keys or (10_000 if args.quick else 100_000)
    block_keys = args.block_keys or (500 if args.quick else 2_000)
    result = run(seconds, state_keys, block_keys, args.cache_size)
    for name, value in result.items():
        print(f"{name:40} {value}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
