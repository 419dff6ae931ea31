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
    "genesis_json_hash": "5a23232e173f1d4585d18d5d55bb4fbdcbd9143e8631094369792eeca456af94",
    "genesis_state_root": "e2b5b89d4df0a4031def43608b97482291fc9e93bafe4837d2e007c641062ba3",
    "block_1_state_root": "c40d3c852fdf1f1ad5a9329564d93d9d4bf54fbe54d43ea6541b2fcd687700a2",
    "block_1_receipts_hash": "7286b064cf16d06cbcab28d6b098555a084fdfafe6c977c63f78b6940d7e7fb4",
    "block_2_state_root": "e7610c36b1b03b6bc826b844d187fe48876a3ae22b19da6a7fbf98658b1de477",
    "block_2_receipts_hash": "d346db2e8c8ede2030fce3ba620564141d4c4ebb9a6900fc34d3a3fd83b607f8",
    "block_3_state_root": "27edfaf067d7634bdeb17c15849e68ecec8c8de1910b25888c4c03eafddc55df",
    "block_3_receipts_hash": "07e918708be4869b900076e2e31c360a7079e4a71e464129c7bd9be78cb12669",
}

# A market round (tests/runtime/golden.py market_vectors): bond, offer, post, the draw two blocks later, commit,
# reveal, then release.
MARKET_PINNED = {
    "market_bond_state_root": "012a7a3329ed76decc78ff1e101da27f6d1ae979ab1f0df1aba421eba78d20a8",
    "market_bond_receipts_hash": "b38fd1065d6f45e72d868bcf54a6b5f09583ce2527f99beab2d5ad82a932deaa",
    "market_offer_state_root": "2a90c4e7272ae56961e8708794b32b1d74700a6362832a46b702934f64045e18",
    "market_offer_receipts_hash": "fc8990648e344ead024e9ae2f4f53d03d18628e646d2b2632558d77e0fad8db7",
    "market_post_state_root": "0e6f359eb23880ec93001a03230019d1fa0ef037d687fef823c15bdfecd07cd6",
    "market_post_receipts_hash": "a593396e5ec46fa075b53ff42ce20b49535db42a9a79aa0c32263ddcc42ce8c8",
    "market_draw_0_state_root": "d7c2eaa9fc1b71276c630b432ce1fd7f72657a5d9cef8bf92c1cac3cb6739fd5",
    "market_draw_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_draw_1_state_root": "0cae06716c0c5649bdb07240f661f05f603b9e0ba87d699fdec80c86ec8a5047",
    "market_draw_1_receipts_hash": "fb62a0df337c6c21d17050ce6e16595d135c2ef9e89def820360fbd89b1b6c47",
    "market_commit_state_root": "c86318f3d796ce0b16721943b668c8182cb4d238a86a962d04ee95b0821ae4ba",
    "market_commit_receipts_hash": "6883fcdf59619cadfca2779d1cc2421a3bf80839a7c466d3d22415c7bf3169ac",
    "market_reveal_state_root": "fe6b2ea23c46e0cf52e748d0a7f381ed5e5abfa1b753a5d06055b1c1869e0c51",
    "market_reveal_receipts_hash": "3b73eb81915e02a921c8d87db34cd9ce76285755abf61db8da3f0eccc832d232",
    "market_after_0_state_root": "033e2629c355ae56b9f92463449c37b90cf69c1f01d9165d38c96cc7299fda9d",
    "market_after_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_1_state_root": "820004e13b256834564f7fca4f806ec8ee8dd5837938034a54469f173dcafcb2",
    "market_after_1_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_2_state_root": "ac6bf22d55835d83074a0b785053b0c955ce6d48032a5fa1e24ef490905d159f",
    "market_after_2_receipts_hash": "53d0a1cc09c84405fed880746296259cbece25470a26889fb8020bcc70b5e688",
    "market_after_3_state_root": "286843a57506178c49ba0c747c4e659e308b699bb8efc47f990866aa3074c09b",
    "market_after_3_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_4_state_root": "7c4479c34d7ade45ab09f79fe25ba22a81d688f64c342d8d42570e87e9562f79",
    "market_after_4_receipts_hash": "c11c227cc9c1ce649ff7c6f77e04e3f12a77c51be2a1bda1411d19d647ee5c02",
    "market_after_5_state_root": "5f0c0b21f45a85a332a5ae431af9b6dc0d3086072056490d311a096607a6abd4",
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
