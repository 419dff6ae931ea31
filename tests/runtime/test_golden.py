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
    "market_bond_state_root": "b34bc0c14b2778c2195cc4698517cf48b3dc0550e398c99c403128ef7282eba2",
    "market_bond_receipts_hash": "b38fd1065d6f45e72d868bcf54a6b5f09583ce2527f99beab2d5ad82a932deaa",
    "market_offer_state_root": "0bed813d42c0baf1c261259eda4c4f5d91e4c1af2c102640a0c1a38f635937b8",
    "market_offer_receipts_hash": "fc8990648e344ead024e9ae2f4f53d03d18628e646d2b2632558d77e0fad8db7",
    "market_post_state_root": "2ff178a005795cc4f4c1afa56705345adc29a2c362307880e93896f0a14c59e3",
    "market_post_receipts_hash": "a593396e5ec46fa075b53ff42ce20b49535db42a9a79aa0c32263ddcc42ce8c8",
    "market_draw_0_state_root": "f252640016f2fd34a7792e2c2809216b93d28d14b423e9196205afb82433eee2",
    "market_draw_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_draw_1_state_root": "9839d93590721bcf5a1dd1e3d7b045c7e5aa5633a5bfcfdf32ae41e1dbaaab01",
    "market_draw_1_receipts_hash": "fb62a0df337c6c21d17050ce6e16595d135c2ef9e89def820360fbd89b1b6c47",
    "market_commit_state_root": "13f9bb63217435356f2b1f4019397265029c4e8cfa94834d576412c608a04000",
    "market_commit_receipts_hash": "6883fcdf59619cadfca2779d1cc2421a3bf80839a7c466d3d22415c7bf3169ac",
    "market_reveal_state_root": "28b0776cb04f919823e0b27285761244418f872a02ac44879f291f574545e6b0",
    "market_reveal_receipts_hash": "3b73eb81915e02a921c8d87db34cd9ce76285755abf61db8da3f0eccc832d232",
    "market_after_0_state_root": "a46d4d5a59e0506bb64dd061a9bd1aeff6956d8aadd64ce29aae0fb5761c389c",
    "market_after_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_1_state_root": "ac2c3d99c581e47aaf5f3aaec0c0826f04dd075d7e77bd81b36ed5b20f80244a",
    "market_after_1_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_2_state_root": "30fab94060169c497e0e24d87ec1b56c6c85c7541b711e5e627e903eaf45a805",
    "market_after_2_receipts_hash": "53d0a1cc09c84405fed880746296259cbece25470a26889fb8020bcc70b5e688",
    "market_after_3_state_root": "7670b04582cbf210ebacf94381d66b3831b201cf75c85094a064dd3d53ed08ae",
    "market_after_3_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_4_state_root": "380c5fdf65d1a44fd114adfb1fdca52f115db528293c5665055f97aa0e105298",
    "market_after_4_receipts_hash": "c11c227cc9c1ce649ff7c6f77e04e3f12a77c51be2a1bda1411d19d647ee5c02",
    "market_after_5_state_root": "f35918d909465a13def49867c50faf00bc3b700b3d1a171dcaf38717e928f36a",
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
