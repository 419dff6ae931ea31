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
    "genesis_json_hash": "db5a5250049e18fdcbfe0cef30450b41bcf749ca9787a5336ae269714fb2e91f",
    "genesis_state_root": "14ff121f2a9489c152e87c7082762721da903cfe8bf1380c297b8e600d8bc249",
    "block_1_state_root": "619184b90de2207ddabf5db13393a1709e412399881c43cfb67c46315fe4ff93",
    "block_1_receipts_hash": "7286b064cf16d06cbcab28d6b098555a084fdfafe6c977c63f78b6940d7e7fb4",
    "block_2_state_root": "65c2137c88bceb56313af702f518c936b8bcf8194818cbe9776e5ef7478f516a",
    "block_2_receipts_hash": "d346db2e8c8ede2030fce3ba620564141d4c4ebb9a6900fc34d3a3fd83b607f8",
    "block_3_state_root": "5075d666d5ac6aab6baacd1a8999e66c1828e8e817b3526b360ead4a2c0c6783",
    "block_3_receipts_hash": "07e918708be4869b900076e2e31c360a7079e4a71e464129c7bd9be78cb12669",
}

# A market round (tests/runtime/golden.py market_vectors): bond, offer, post, commit, reveal, then release.
MARKET_PINNED = {
    "market_bond_state_root": "a8a98ee372b9d5d62cd0440086c9c7e387d6cb6290044ac9a2f00334a2deaf4f",
    "market_bond_receipts_hash": "b38fd1065d6f45e72d868bcf54a6b5f09583ce2527f99beab2d5ad82a932deaa",
    "market_offer_state_root": "cb8b47fcf388d2f2c418685665acfaa6f5f49dec841261e41e098cf58b49af80",
    "market_offer_receipts_hash": "ca84e25babdf025f6f69bdfc6113e8037afb513fd7ebf4c62fad8d9a85a70697",
    "market_post_state_root": "f0e271a5f7712aa0684b010f5334bb314340db8e0664e4415f64c67863144f83",
    "market_post_receipts_hash": "26e0d0cc7b824835f27109c9d20609b01004c599ddbde568290ceb60e58bce64",
    "market_commit_state_root": "10f24a74a6ce7cc2169cb4cd87ef4c4d9bd71ddf5db5f181562c621f951da228",
    "market_commit_receipts_hash": "56d2f1e12bbb87aa42f152304d2ef2dc7dd3909eea7a2e9326d370f0bff0a6e3",
    "market_reveal_state_root": "76764342428f5ccabc3c5d0dc4b32ddffdf18ca93cd9765fff2cbb0e70c9dfb6",
    "market_reveal_receipts_hash": "185fbf1f65f6205115e5a26392d9fd94c733d6e8a67d6b05b09ab8254432f0e1",
    "market_after_0_state_root": "95ac511922bc2460da25fa3e86205e810f3d5468d37a50004aa876610a09aed5",
    "market_after_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_1_state_root": "3749ef609f20aa5fa8ac41766952d7fccb18983ed15d666e282d3072b037f2de",
    "market_after_1_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_2_state_root": "8893e384b2e4dac1608ad495fea780ba67982d07d57f3215d6c45c21916047bb",
    "market_after_2_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_3_state_root": "ba1a5adeb1132583296c74161835ac1d98d6f113e8649a49699dcfba3c28daa8",
    "market_after_3_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_4_state_root": "f3a193119728a0a88c57ad63737155fc2c7baed7fb57f0099186fb10e03ae7f2",
    "market_after_4_receipts_hash": "f1f1f5b5cf653d32d1cbcdea29a17d8e1879bb7f41a4e7907a37aea8f49da857",
    "market_after_5_state_root": "970296d3cf104409d7ae919f5bead3269e54e3a2316fc32e495411a8888d5bac",
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
