"""apply_block is deterministic across processes: pinned state roots, receipts and genesis hash.

The figures change only when a state or receipt format changes on purpose; then
regenerate them with `python -m tests.runtime.golden` and say why in the commit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runtime.golden import market_vectors, vectors

ROOT = Path(__file__).resolve().parents[2]

PINNED = {
    "genesis_json_hash": "5fb114ee67afca2ae5af02fcdbd8c58a12f009f264c998ce49b577f3dfa8349d",
    "genesis_state_root": "9aa79c26ee21d5706ee87950fe4cedb0efd95152abde43e5b7c3d82e6d5260d5",
    "block_1_state_root": "29314c4694a3fa427a201760c5d47174456ccfe28876f2e4c572b51e6d096b61",
    "block_1_receipts_hash": "7286b064cf16d06cbcab28d6b098555a084fdfafe6c977c63f78b6940d7e7fb4",
    "block_2_state_root": "5c2ffe49cd6145c9e5ec562a1925fce9f10667db525209756a55b14ead09c9f3",
    "block_2_receipts_hash": "d346db2e8c8ede2030fce3ba620564141d4c4ebb9a6900fc34d3a3fd83b607f8",
    "block_3_state_root": "b84e987dda0162c2ba2c27c48decefd200e9c945101bf18b7e1779fd6a59dc0b",
    "block_3_receipts_hash": "07e918708be4869b900076e2e31c360a7079e4a71e464129c7bd9be78cb12669",
}

# A market round (tests/runtime/golden.py market_vectors): bond, offer, post, commit, reveal, then release.
MARKET_PINNED = {
    "market_bond_state_root": "a448f9b4c62e829caa601905afd55fde5ce49c1a8313e0ee4233f7e8c9be8db9",
    "market_bond_receipts_hash": "b38fd1065d6f45e72d868bcf54a6b5f09583ce2527f99beab2d5ad82a932deaa",
    "market_offer_state_root": "1dd15eb5cece6861736882cce4d817d5b38cbeb728b7a0110f155b6502172a6e",
    "market_offer_receipts_hash": "ca84e25babdf025f6f69bdfc6113e8037afb513fd7ebf4c62fad8d9a85a70697",
    "market_post_state_root": "0f3d6af6deacf270d82f9e30b58bac27b3c33826aee2e0d93c88a622cd5ed46a",
    "market_post_receipts_hash": "26e0d0cc7b824835f27109c9d20609b01004c599ddbde568290ceb60e58bce64",
    "market_commit_state_root": "3b800fe5a62ff1c1e6258f3f91397c01acac9c23098e838e8c2a36fd0895aafb",
    "market_commit_receipts_hash": "56d2f1e12bbb87aa42f152304d2ef2dc7dd3909eea7a2e9326d370f0bff0a6e3",
    "market_reveal_state_root": "82eec2dbd395c02552cdce400e55248cd9fceeead00ec266a1dfd277ab6793b6",
    "market_reveal_receipts_hash": "185fbf1f65f6205115e5a26392d9fd94c733d6e8a67d6b05b09ab8254432f0e1",
    "market_after_0_state_root": "66636b9ccb42067e90cc6249f39f02e99a41ab263891f59c3d930f9cbf7bdc33",
    "market_after_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_1_state_root": "8a6a17da6c77d871de1958cf845c57d07c4e8a402b934ed5167c15bdde7e85e1",
    "market_after_1_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_2_state_root": "91cfb79276a52febcf00c2f776f818f0fcbeab697c5a3011730590f84baad82c",
    "market_after_2_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_3_state_root": "15096be190869dbb98fb6a272bf96c0041edcfeb1588d0cdb14ee5ddd099032a",
    "market_after_3_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_4_state_root": "b458ca9e90994d5e31e4c4bbc01975afd3eb4fcd13b84c7f5459521be8b3fe3d",
    "market_after_4_receipts_hash": "f1f1f5b5cf653d32d1cbcdea29a17d8e1879bb7f41a4e7907a37aea8f49da857",
    "market_after_5_state_root": "75bed41f6f8895d4621d93dc6fa606103f43447b99bf7ab236735d84638f8f3c",
    "market_after_5_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
}


def test_this_process_reproduces_the_pinned_vectors():
    assert vectors() == PINNED
    assert market_vectors() == MARKET_PINNED


@pytest.mark.parametrize("hash_seed", ["0", "1", "4242"])
def test_other_processes_with_other_hash_seeds_reproduce_them(hash_seed):
    environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
    completed = subprocess.run(
        [sys.executable, "-m", "tests.runtime.golden"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120, check=True,
    )
    assert json.loads(completed.stdout) == {**PINNED, **MARKET_PINNED}
