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
    "genesis_json_hash": "ff8fa2d78ee4998e02ee95b3a8b5b8cd53c76e63d889e984a9612b3d08c96db5",
    "genesis_state_root": "b3511e398a6f4dc27fc89d608f777b8457703b131962837bfa4ad139bd233599",
    "block_1_state_root": "3f5559fa1421866b8664bc5d77496b3d74253e38ae6538f3221c4c3f2bcf002a",
    "block_1_receipts_hash": "7286b064cf16d06cbcab28d6b098555a084fdfafe6c977c63f78b6940d7e7fb4",
    "block_2_state_root": "ed9b3c96e415333b33b382879a633557527e3b49edfbcbbadbe89f37ac2773fc",
    "block_2_receipts_hash": "d346db2e8c8ede2030fce3ba620564141d4c4ebb9a6900fc34d3a3fd83b607f8",
    "block_3_state_root": "682e0b77672804beb768c958111d9a0b6df63de6918026f3af190b3c3159c7c7",
    "block_3_receipts_hash": "07e918708be4869b900076e2e31c360a7079e4a71e464129c7bd9be78cb12669",
}

# A market round (tests/runtime/golden.py market_vectors): bond, offer, post, the draw two blocks later, commit,
# reveal, then release.
MARKET_PINNED = {
    "market_bond_state_root": "3aa45e2e7dfd5f08471bcdfa4bcb7ae4ce060695a02c0ae1d67d1bb0b080b674",
    "market_bond_receipts_hash": "b38fd1065d6f45e72d868bcf54a6b5f09583ce2527f99beab2d5ad82a932deaa",
    "market_offer_state_root": "8e0f0fbb7f953cf1be30dbf0828bcc0222787c721c6434aecad6ca44c220246b",
    "market_offer_receipts_hash": "fc8990648e344ead024e9ae2f4f53d03d18628e646d2b2632558d77e0fad8db7",
    "market_post_state_root": "4e1c01be869d3777e491b3c680009005e5ca9efa56690fa1190907dfd9b14ee8",
    "market_post_receipts_hash": "a593396e5ec46fa075b53ff42ce20b49535db42a9a79aa0c32263ddcc42ce8c8",
    "market_draw_0_state_root": "dbc3b4e2666cd893e8b51033ee9497dd378cfd6426bb0ef8e6468a19f6a83a09",
    "market_draw_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_draw_1_state_root": "338f671eeec4e9055ce23f5b6192c02d69bb3758077e8823929a8c2d052015ad",
    "market_draw_1_receipts_hash": "fb62a0df337c6c21d17050ce6e16595d135c2ef9e89def820360fbd89b1b6c47",
    "market_commit_state_root": "ccd10b9affa7ca4b231fb317ccf46f405d31eba5388ac686f9a942f930ff55e8",
    "market_commit_receipts_hash": "6883fcdf59619cadfca2779d1cc2421a3bf80839a7c466d3d22415c7bf3169ac",
    "market_reveal_state_root": "e6d3dca676e071202bdbe57bfc661c29c87d3f3aff569f9bec8b532019c872d2",
    "market_reveal_receipts_hash": "3b73eb81915e02a921c8d87db34cd9ce76285755abf61db8da3f0eccc832d232",
    "market_after_0_state_root": "1dba9f1327a8c43204689de79e6f5e6165aa3d3ac3b4492d3b1291788b446573",
    "market_after_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_1_state_root": "898972ef3fbd333261d5af858407a330ba2b069e281f43dc61a536271b7a5d1e",
    "market_after_1_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_2_state_root": "248c0b9f8872a6b70a8ca6812262cf7298a503dc4b2786eee9e6965a72ae7746",
    "market_after_2_receipts_hash": "53d0a1cc09c84405fed880746296259cbece25470a26889fb8020bcc70b5e688",
    "market_after_3_state_root": "ce4c3c42d04c3ee3a7da774b197fd81bf54f12561d33133d80141951328e098f",
    "market_after_3_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_4_state_root": "3055b9fd025a96a981e9246fa201c073dd9a18e2364ab3807400806792d07dfb",
    "market_after_4_receipts_hash": "c11c227cc9c1ce649ff7c6f77e04e3f12a77c51be2a1bda1411d19d647ee5c02",
    "market_after_5_state_root": "0959bd36c765844ef0b1cbb82b033c02acf75d6e6c49c1a9f4ded6123e717d17",
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
