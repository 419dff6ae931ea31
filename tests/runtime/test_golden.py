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
    "genesis_json_hash": "a147b84758cdbed61e05570a2b00b36b2f451e3c09d5b98ccf9312389ed8221b",
    "genesis_state_root": "fb6f7926eb7deac0e48d921a671790de18653ce033dcba8cd6ca626bc85bc73e",
    "block_1_state_root": "7f7ff37f8e4808917032a6a1f7485360e865d68f9672f7d2cbc4dd092a8ac347",
    "block_1_receipts_hash": "7286b064cf16d06cbcab28d6b098555a084fdfafe6c977c63f78b6940d7e7fb4",
    "block_2_state_root": "31542275a69140d8a7e158c43d6635910cc3da527475c6aadd2b66b7a69e1dc4",
    "block_2_receipts_hash": "d346db2e8c8ede2030fce3ba620564141d4c4ebb9a6900fc34d3a3fd83b607f8",
    "block_3_state_root": "d8d202448f0e8ae441a6003b728a4ac8ad597337b4656460d2bd13efaafad31c",
    "block_3_receipts_hash": "07e918708be4869b900076e2e31c360a7079e4a71e464129c7bd9be78cb12669",
}

# A market round (tests/runtime/golden.py market_vectors): bond, offer, post, commit, reveal, then release.
MARKET_PINNED = {
    "market_bond_state_root": "5a467e9dd2ba35df0b83335467df2ae99eb2b26114e70250b53d9fc96c5a2e81",
    "market_bond_receipts_hash": "b38fd1065d6f45e72d868bcf54a6b5f09583ce2527f99beab2d5ad82a932deaa",
    "market_offer_state_root": "23f2f747e6a7c3bec0ccba38cacf5400bf551ea7ceb4994fde17822eed69f434",
    "market_offer_receipts_hash": "ca84e25babdf025f6f69bdfc6113e8037afb513fd7ebf4c62fad8d9a85a70697",
    "market_post_state_root": "d6265b8f0ec218d80398f183ef7d17cad2fede1b25176edc427f64d0485c26ae",
    "market_post_receipts_hash": "26e0d0cc7b824835f27109c9d20609b01004c599ddbde568290ceb60e58bce64",
    "market_commit_state_root": "453cfae7abdb84c5db291bcc19124d99c62ef4f9f15ef5924e3a147494e78b46",
    "market_commit_receipts_hash": "56d2f1e12bbb87aa42f152304d2ef2dc7dd3909eea7a2e9326d370f0bff0a6e3",
    "market_reveal_state_root": "7d21e071bb746188f9719946b4169028cc896f5f61455aa1900f458e4c0969bf",
    "market_reveal_receipts_hash": "185fbf1f65f6205115e5a26392d9fd94c733d6e8a67d6b05b09ab8254432f0e1",
    "market_after_0_state_root": "dd5d1354ac79ad14b51ae35cdf39f44dc5f151f3aa7dbea85f13dacf80cafdc7",
    "market_after_0_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_1_state_root": "c777743adcd329b9b1745c95522f7d7929fa43b4439fecd85b83e91260bce9e3",
    "market_after_1_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_2_state_root": "44ed455c9218f0442edcfe46c3108c6879b3881214fb8f36cb57b1637693d2a0",
    "market_after_2_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_3_state_root": "39d6efec9c7b348fadee817407c0076019401a0334732d50830b7e597a76bcf8",
    "market_after_3_receipts_hash": "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
    "market_after_4_state_root": "1f1c2238b70ff83f1524e3fb2713cd030226ceceb1549b8aaf7da3c756ce9adc",
    "market_after_4_receipts_hash": "f1f1f5b5cf653d32d1cbcdea29a17d8e1879bb7f41a4e7907a37aea8f49da857",
    "market_after_5_state_root": "725455588da5a85e0f1a8161bd68ea612be8295f69d9eeae4c0a0349c16123f3",
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
