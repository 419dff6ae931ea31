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
    "genesis_json_hash": "1a634b4edb476444b6430d3cd949b5cf9a88dfee4942979f5d9e638856a97ad2",
    "genesis_state_root": "2d6881c64970ac858431de8d99d6924200532fc16576f62b8fb0ec1b4613933a",
    "block_1_state_root": "2df031235b27db656e98f464e16504e055f9bc4e7c35d9fb6bd64c6a2fc24d39",
    "block_1_receipts_hash": "7286b064cf16d06cbcab28d6b098555a084fdfafe6c977c63f78b6940d7e7fb4",
    "block_2_state_root": "c398e4052e599e9ac51d0a09e34162fcad8127e52aa7abf24a57c4d4a7808080",
    "block_2_receipts_hash": "d346db2e8c8ede2030fce3ba620564141d4c4ebb9a6900fc34d3a3fd83b607f8",
    "block_3_state_root": "cdd4e5b8a573ac0882f7fddbee737b88c5a2c63885f82f8ec8a8452b371c95ff",
    "block_3_receipts_hash": "07e918708be4869b900076e2e31c360a7079e4a71e464129c7bd9be78cb12669",
}

# A market round (tests/runtime/golden.py market_vectors): bond, offer, post, the draw two blocks later, commit,
# reveal, then release.
MARKET_PINNED = {
    "market_bond_state_root": "6b12fe30143a4dcacf354fdb3a583c783d758fb385c63a23c5723e015924f5cb",
    "market_bond_receipts_hash": "b38fd1065d6f45e72d868bcf54a6b5f09583ce2527f99beab2d5ad82a932deaa",
    "market_offer_state_root": "c7cf11ce0abdd805f6a20b3913d0808d9c93cebfa8b63c02d37aa552884c4ac1",
    "market_offer_receipts_hash": "fc8990648e344ead024e9ae2f4f53d03d18628e646d2b2632558d77e0fad8db7",
    "market_post_state_root": "9a4ec11c8543330fb6e0e251c254970ce19c452a126f797761f1bf705c24a5d8",
    "market_post_receipts_hash": "a593396e5ec46fa075b53ff42ce20b49535db42a9a79aa0c32263ddcc42ce8c8",
    "market_draw_0_state_root": "664148f3f6ac356e9dc41bca4c95b37da041fc1df793a1f5a26d77f9944ac998",
    "market_draw_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_draw_1_state_root": "1db65c86ef1a3c140a7bae815eda0552648d7e06dd6f3e01b647797c6a36869a",
    "market_draw_1_receipts_hash": "fb62a0df337c6c21d17050ce6e16595d135c2ef9e89def820360fbd89b1b6c47",
    "market_commit_state_root": "c8017a5132de722c0baa4a3be525b9d55a5c20b8a5a182cfeae52bc95da1bb51",
    "market_commit_receipts_hash": "6883fcdf59619cadfca2779d1cc2421a3bf80839a7c466d3d22415c7bf3169ac",
    "market_reveal_state_root": "04e3470af711383bed85860fd7cff4948f4e497eede3340ac8988c3ed8429e33",
    "market_reveal_receipts_hash": "3b73eb81915e02a921c8d87db34cd9ce76285755abf61db8da3f0eccc832d232",
    "market_after_0_state_root": "a5695b76e7d7c4faa526dd4efc8edbcc0ef446c6ffed7c29c74e77189ea196a5",
    "market_after_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_1_state_root": "a7902c4f9840c6279899a829e994bcff88de420d484d97e02a35745e6067ddaf",
    "market_after_1_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_2_state_root": "3a41a739e62af8bcfe9d80de59a5d87aa85ae3c284798255371f593994b5035c",
    "market_after_2_receipts_hash": "53d0a1cc09c84405fed880746296259cbece25470a26889fb8020bcc70b5e688",
    "market_after_3_state_root": "2db20976357bb53ff38b3b1b40b8d01bf29cef7ead8050494a3a5a2d8a5c476f",
    "market_after_3_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_4_state_root": "84f1f85b4035283fcd63ed32451175902ab6e7b9f845577bd08fd1c1439862e7",
    "market_after_4_receipts_hash": "c11c227cc9c1ce649ff7c6f77e04e3f12a77c51be2a1bda1411d19d647ee5c02",
    "market_after_5_state_root": "86545e2a1c44da3c9d696a34ca4b269298e8605dd3827f0bd119798fae88de56",
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
