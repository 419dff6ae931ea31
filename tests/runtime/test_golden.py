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
    "genesis_json_hash": "68ca074c4571ac4eb05a5755290fa2fc802f66b07bf07cb9667be20389033dc8",
    "genesis_state_root": "f76e778f1ebad59328a4381b9679c1ac145d7c87722c357a3fa6cf5470cd0aa5",
    "block_1_state_root": "ae12c15dfe3106db610265c5d319d5822f844a66cdec747e9c957f14ce4f70a5",
    "block_1_receipts_hash": "7286b064cf16d06cbcab28d6b098555a084fdfafe6c977c63f78b6940d7e7fb4",
    "block_2_state_root": "136d878029fdf5469e6bb3c414e5bcea6ddd64dacdde832fd16289a44e7f92ea",
    "block_2_receipts_hash": "d346db2e8c8ede2030fce3ba620564141d4c4ebb9a6900fc34d3a3fd83b607f8",
    "block_3_state_root": "43d1e108d29adb7817b278b9f6667a0030a04f8caa6b934dbe0fd00155ade27e",
    "block_3_receipts_hash": "07e918708be4869b900076e2e31c360a7079e4a71e464129c7bd9be78cb12669",
}

# A market round (tests/runtime/golden.py market_vectors): bond, offer, post, the draw two blocks later, commit,
# reveal, then release.
MARKET_PINNED = {
    "market_bond_state_root": "fd74db543498a52d565db1a41d2598b1fd14abd280056c26f2f95451773d8f5a",
    "market_bond_receipts_hash": "b38fd1065d6f45e72d868bcf54a6b5f09583ce2527f99beab2d5ad82a932deaa",
    "market_offer_state_root": "7773430fcb4c565b49e306c0bf85ed990d42582c0716e1e4d3e898641cb6fe17",
    "market_offer_receipts_hash": "3b5719cd5e743c674510136ed0fe35df580defd961a0a464d36c87aa972fe87b",
    "market_post_state_root": "2f31d118805824a15fba31fee634840bf1478d0c6eeff733732ad14c2cf5c3ed",
    "market_post_receipts_hash": "a593396e5ec46fa075b53ff42ce20b49535db42a9a79aa0c32263ddcc42ce8c8",
    "market_draw_0_state_root": "565163a31ec633c830d640885ecfaf46bf4f6f9a64a45255ec0b87f016862da8",
    "market_draw_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_draw_1_state_root": "3b5276b6554210f31e8c4ffe58914d8c7ce836b150a3ef5322bcbcc716c41bde",
    "market_draw_1_receipts_hash": "454a9d8a39a669944abc8444669ef3e224c9fab22b72d7a384cdecdf354963d2",
    "market_commit_state_root": "f8fe25074564b94559c421a6233527b192734df43464c799c1ad9a4bfae4aad8",
    "market_commit_receipts_hash": "6883fcdf59619cadfca2779d1cc2421a3bf80839a7c466d3d22415c7bf3169ac",
    "market_reveal_state_root": "1367bb5948b89e8fdea0d6978881a3aedd4e07afee24e125b55fbb0dd91ba664",
    "market_reveal_receipts_hash": "3b73eb81915e02a921c8d87db34cd9ce76285755abf61db8da3f0eccc832d232",
    "market_after_0_state_root": "8d5a01555ea34bb77beb6ef1d6bfdf927f75dd949d2aa69119365d6425cb71c5",
    "market_after_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_1_state_root": "cb17444620e9916f6d2d76e28a39e59efa6566ac5a1ca9d4bb23005abdd5e424",
    "market_after_1_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_2_state_root": "4ee60e04af88edd8a97824f7de5f03567784c703d116cd84d358426dcb12c6eb",
    "market_after_2_receipts_hash": "53d0a1cc09c84405fed880746296259cbece25470a26889fb8020bcc70b5e688",
    "market_after_3_state_root": "66d844c84b9e3a50e69d29f22834375f0953d4e691dc43ab58a9ad17a8d04ea1",
    "market_after_3_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_4_state_root": "fa9d8f7d5d5e7931d3850906675be7ca3704eee1755159adf3b20d08167ab4c5",
    "market_after_4_receipts_hash": "c11c227cc9c1ce649ff7c6f77e04e3f12a77c51be2a1bda1411d19d647ee5c02",
    "market_after_5_state_root": "dc6465b2a1d3c0fdb52f303e7ebedbf376a570427959c7e06c146358a184e693",
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
