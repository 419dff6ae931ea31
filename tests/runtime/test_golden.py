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
    "genesis_json_hash": "1945d4fc6cdd40cd9c78476908a9f30684300f984a1daeba85328581afb91ebb",
    "genesis_state_root": "550c0bcc91628488f3e2e25abcef8cead979e869937f43924ffbdbbba20f248a",
    "block_1_state_root": "6461ea9f6c60fe1e117ee7ced372f50df34754196b1e750f2328feccdec7dca8",
    "block_1_receipts_hash": "7286b064cf16d06cbcab28d6b098555a084fdfafe6c977c63f78b6940d7e7fb4",
    "block_2_state_root": "1be77b0ed34d8303bf37f7d80322b9ed16e08286c41dd2798d5a01e895e3cfa1",
    "block_2_receipts_hash": "d346db2e8c8ede2030fce3ba620564141d4c4ebb9a6900fc34d3a3fd83b607f8",
    "block_3_state_root": "94ea222b5902bd8466ab5b1f14881da14db2795528f9f8a7166124281d369130",
    "block_3_receipts_hash": "07e918708be4869b900076e2e31c360a7079e4a71e464129c7bd9be78cb12669",
}

# A market round (tests/runtime/golden.py market_vectors): bond, offer, post, the draw two blocks later, commit,
# reveal, then release.
MARKET_PINNED = {
    "market_bond_state_root": "66c351bef6b67d60833b55bd9027026458bae4588ae86c11b392cf3ec2ca057f",
    "market_bond_receipts_hash": "b38fd1065d6f45e72d868bcf54a6b5f09583ce2527f99beab2d5ad82a932deaa",
    "market_offer_state_root": "7f5ec45d4b69829a385f720f807af88c96552e06550ac0e0a396ff31d66e638f",
    "market_offer_receipts_hash": "ca84e25babdf025f6f69bdfc6113e8037afb513fd7ebf4c62fad8d9a85a70697",
    "market_post_state_root": "c0ebecd3384b26483f7860d20f9dd37664d8916427f5d0cf2fe6cb43027f69c8",
    "market_post_receipts_hash": "a593396e5ec46fa075b53ff42ce20b49535db42a9a79aa0c32263ddcc42ce8c8",
    "market_draw_0_state_root": "6760722c1a6f97f7fc835dc167e1c080d21891efbd8ee5c82c60a66556065651",
    "market_draw_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_draw_1_state_root": "e42c032df76d12001aa9d66feaf11cf026e066af19fe3de49c603a7ecf88e7ff",
    "market_draw_1_receipts_hash": "454a9d8a39a669944abc8444669ef3e224c9fab22b72d7a384cdecdf354963d2",
    "market_commit_state_root": "d069fef15100babb9767faf4404824a5f2bf6c6d72a3efe01d40a191be99646f",
    "market_commit_receipts_hash": "6883fcdf59619cadfca2779d1cc2421a3bf80839a7c466d3d22415c7bf3169ac",
    "market_reveal_state_root": "f17f4da4d2ea2aafd4e5d7e7828c7aef9a11fe7fbd8e51027ec30f3a9cfadcca",
    "market_reveal_receipts_hash": "3b73eb81915e02a921c8d87db34cd9ce76285755abf61db8da3f0eccc832d232",
    "market_after_0_state_root": "3fd2c6eb6c5aebfa66239fdd0befec5b476513d64d27b33a5f5962d13cb62289",
    "market_after_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_1_state_root": "921864886a61e9b2aeee663be986aae09e45dfaa643c47cc71270572c63d1e0d",
    "market_after_1_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_2_state_root": "aa4a11e1278ece4011ab3c67281cf9910643050ff023b2095b33198797a79cb0",
    "market_after_2_receipts_hash": "53d0a1cc09c84405fed880746296259cbece25470a26889fb8020bcc70b5e688",
    "market_after_3_state_root": "60a9d3931697adae5935c75d5edf86901b5f552dacaee0b3924c0e6abd6f98d0",
    "market_after_3_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_4_state_root": "79580b413d9b15c3b5ea4f5106a5b4510dd22288907d9aea45c856a724aa3787",
    "market_after_4_receipts_hash": "c11c227cc9c1ce649ff7c6f77e04e3f12a77c51be2a1bda1411d19d647ee5c02",
    "market_after_5_state_root": "a0f7a6a6747b52c9056ef776d8f53ff9fbb709535b615d662c9d5a870052d488",
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
