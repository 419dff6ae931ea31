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

from tests.runtime.golden import vectors

ROOT = Path(__file__).resolve().parents[2]

PINNED = {
    "genesis_json_hash": "961cf1aaacdc944149d36948856c102dd69965b86ca753b8346f5e1bd5a2f756",
    "genesis_state_root": "14ff121f2a9489c152e87c7082762721da903cfe8bf1380c297b8e600d8bc249",
    "block_1_state_root": "619184b90de2207ddabf5db13393a1709e412399881c43cfb67c46315fe4ff93",
    "block_1_receipts_hash": "7286b064cf16d06cbcab28d6b098555a084fdfafe6c977c63f78b6940d7e7fb4",
    "block_2_state_root": "65c2137c88bceb56313af702f518c936b8bcf8194818cbe9776e5ef7478f516a",
    "block_2_receipts_hash": "d346db2e8c8ede2030fce3ba620564141d4c4ebb9a6900fc34d3a3fd83b607f8",
    "block_3_state_root": "5075d666d5ac6aab6baacd1a8999e66c1828e8e817b3526b360ead4a2c0c6783",
    "block_3_receipts_hash": "07e918708be4869b900076e2e31c360a7079e4a71e464129c7bd9be78cb12669",
}


def test_this_process_reproduces_the_pinned_vectors():
    assert vectors() == PINNED


@pytest.mark.parametrize("hash_seed", ["0", "1", "4242"])
def test_other_processes_with_other_hash_seeds_reproduce_them(hash_seed):
    environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
    completed = subprocess.run(
        [sys.executable, "-m", "tests.runtime.golden"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120, check=True,
    )
    assert json.loads(completed.stdout) == PINNED
