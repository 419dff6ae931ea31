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
    "genesis_json_hash": "dbb49b21b5b5acc0bb9b6fa12ffbf2190f813ae7a5f406657732896c5e8e0db9",
    "genesis_state_root": "ef8bddcf0582057953fbe9e23b05074028c265a29c7b8f189574f2da241d1917",
    "block_1_state_root": "ff11235e9bd00da9cf64cdc1173e1437c55762fd2796c36f1bfc7f74b3a5363d",
    "block_1_receipts_hash": "7286b064cf16d06cbcab28d6b098555a084fdfafe6c977c63f78b6940d7e7fb4",
    "block_2_state_root": "ef30e21ccd822dd9b3028d2af2d4bb01a60c457a89cd0987fd95e1e7ea3aed8c",
    "block_2_receipts_hash": "d346db2e8c8ede2030fce3ba620564141d4c4ebb9a6900fc34d3a3fd83b607f8",
    "block_3_state_root": "b13429847b45dbd8b1ac55cdd69db992a87f65c37ed4248cdb1abb76e0150aad",
    "block_3_receipts_hash": "07e918708be4869b900076e2e31c360a7079e4a71e464129c7bd9be78cb12669",
}

# A market round (tests/runtime/golden.py market_vectors): bond, offer, post, the draw two blocks later, commit,
# reveal, then release.
MARKET_PINNED = {
    "market_bond_state_root": "c09c8e4dd54162e540103cef596f5d37db2927cd46f049ba028d8464c90f35cf",
    "market_bond_receipts_hash": "b38fd1065d6f45e72d868bcf54a6b5f09583ce2527f99beab2d5ad82a932deaa",
    "market_offer_state_root": "5d480fd68394740500981c61cbe7addba3be91e32187dcf6b74b3d29e0499473",
    "market_offer_receipts_hash": "fc8990648e344ead024e9ae2f4f53d03d18628e646d2b2632558d77e0fad8db7",
    "market_post_state_root": "bd7315013fc956c71a086ec0fc4f5060bb73bbf511a7aab1a615b69e12c0e64a",
    "market_post_receipts_hash": "a593396e5ec46fa075b53ff42ce20b49535db42a9a79aa0c32263ddcc42ce8c8",
    "market_draw_0_state_root": "a72c0cb222e366fbb2321f687f645fb8e8e6370776f7a2b9d2e661ab7feda29b",
    "market_draw_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_draw_1_state_root": "74be707014285161136b0fb271dd31aebd0cf339e84a96952d374d76a5222ae7",
    "market_draw_1_receipts_hash": "fb62a0df337c6c21d17050ce6e16595d135c2ef9e89def820360fbd89b1b6c47",
    "market_commit_state_root": "4bbe210b3eaf5d50d8e0c0b934ab5569043269643cf8f7af6a0693c99fdd9d2c",
    "market_commit_receipts_hash": "6883fcdf59619cadfca2779d1cc2421a3bf80839a7c466d3d22415c7bf3169ac",
    "market_reveal_state_root": "20afb96453cf385fb833107718fc8540bce421d9b78098c7f147e7fa287a3249",
    "market_reveal_receipts_hash": "3b73eb81915e02a921c8d87db34cd9ce76285755abf61db8da3f0eccc832d232",
    "market_after_0_state_root": "c78cf76fe144b1c280867baa905b48a13856bd096b849958ce91bb93ea784572",
    "market_after_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_1_state_root": "7d713a6a8c3d750161c9de36222d256d078c8154587690d8f16527031060a7e7",
    "market_after_1_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_2_state_root": "34fb15cfa338298277b281a271e6d66921292ccd0c43873d358031cc07b24ffc",
    "market_after_2_receipts_hash": "53d0a1cc09c84405fed880746296259cbece25470a26889fb8020bcc70b5e688",
    "market_after_3_state_root": "0e6ce5063ea93c2ed25bcd4356204e3781944df634b027efa07fbac34034deea",
    "market_after_3_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_4_state_root": "22bb92d5f96d22e4eeb3cae68ffc1ab61f5b063a58e50ec951a591a7d842c164",
    "market_after_4_receipts_hash": "c11c227cc9c1ce649ff7c6f77e04e3f12a77c51be2a1bda1411d19d647ee5c02",
    "market_after_5_state_root": "ae9e12437de7bd2d8b3fd789fa729a3897eb1fe8da5cfcd39190f491d7287d01",
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
