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
    "genesis_json_hash": "104c69df69b018fb8723e37aadabce55b411142407f35b87248ae2f23e1460af",
    "genesis_state_root": "5d5bf61cdbc1776294b177abf0599e98ddc8df50c20597f422d676d4e5723a92",
    "block_1_state_root": "4f803e17ec9b6fcd3dc29f9585f98cb94024d824a8308da0390a9d592bb3352e",
    "block_1_receipts_hash": "7286b064cf16d06cbcab28d6b098555a084fdfafe6c977c63f78b6940d7e7fb4",
    "block_2_state_root": "d60d0b1daf40467f31faa9714597f7100ea5eb1456e007b7fed920135b651853",
    "block_2_receipts_hash": "d346db2e8c8ede2030fce3ba620564141d4c4ebb9a6900fc34d3a3fd83b607f8",
    "block_3_state_root": "e33e9af864afdf345a93c24868e56eef853876d6c5d074d1bd9213439e7c24a5",
    "block_3_receipts_hash": "07e918708be4869b900076e2e31c360a7079e4a71e464129c7bd9be78cb12669",
}

# A market round (tests/runtime/golden.py market_vectors): bond, offer, post, the draw two blocks later, commit,
# reveal, then release.
MARKET_PINNED = {
    "market_bond_state_root": "1f6f79a414d812111348a2b90b699473532b742ea64254846b0a444f6a7af951",
    "market_bond_receipts_hash": "b38fd1065d6f45e72d868bcf54a6b5f09583ce2527f99beab2d5ad82a932deaa",
    "market_offer_state_root": "c5fc3f755da86dd8fce669c842a5741b80d852e71e819404f022c7d31fef02be",
    "market_offer_receipts_hash": "ca84e25babdf025f6f69bdfc6113e8037afb513fd7ebf4c62fad8d9a85a70697",
    "market_post_state_root": "f4661c051cd7b0d4fa236e7ae8d15a03dde8ee94c32512b4baf7876f8e894df0",
    "market_post_receipts_hash": "a593396e5ec46fa075b53ff42ce20b49535db42a9a79aa0c32263ddcc42ce8c8",
    "market_draw_0_state_root": "def2eedb4ac1425a67269c23d159e345142cee5f6db2de682711f5db1e7557e2",
    "market_draw_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_draw_1_state_root": "27f2e0a22caafa25fd1373bc5dc5f684d6550e010da8eb708867a6af3d062865",
    "market_draw_1_receipts_hash": "454a9d8a39a669944abc8444669ef3e224c9fab22b72d7a384cdecdf354963d2",
    "market_commit_state_root": "401da510b779bb5292cab177aa7ee5b50ba04e5e80523ee580aa39189fcf28c4",
    "market_commit_receipts_hash": "6883fcdf59619cadfca2779d1cc2421a3bf80839a7c466d3d22415c7bf3169ac",
    "market_reveal_state_root": "3399f2f038f018893eb0d246505dae245153696e1af098f1aa42597ed9fc33ac",
    "market_reveal_receipts_hash": "3b73eb81915e02a921c8d87db34cd9ce76285755abf61db8da3f0eccc832d232",
    "market_after_0_state_root": "fdb6cb0862f06c6b4ee92c6ade53d917bfada2c1216b50cd432bd54fcb1ea2c5",
    "market_after_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_1_state_root": "7bf25fe6197efd21043f8e76f3272d7f59fac9aab25c65f1185d7071966b5d35",
    "market_after_1_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_2_state_root": "3e55abdebc3da0a48cb2097d49e0b0b1bd756e5defa7e7e3518951888f638dbe",
    "market_after_2_receipts_hash": "53d0a1cc09c84405fed880746296259cbece25470a26889fb8020bcc70b5e688",
    "market_after_3_state_root": "e2d4bfee34cef34a9f50f74dd2eb3490dd0ec879ccad777462a57a42b341e14d",
    "market_after_3_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_4_state_root": "41c3fc25ac25318f0ffad2cd3057660a1024102f1e45b2ea6f185f92e85ca56d",
    "market_after_4_receipts_hash": "c11c227cc9c1ce649ff7c6f77e04e3f12a77c51be2a1bda1411d19d647ee5c02",
    "market_after_5_state_root": "3fac1b2fcac784c0c4a43e5a1b82ec93b4072e0c06717546af1422a67f108964",
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
