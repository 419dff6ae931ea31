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
    "genesis_json_hash": "b49c238596e9f3d1ba7b3ecd21c923c520b332ab2457a375f64209baf12fb19d",
    "genesis_state_root": "7c3e7b33b27cc595f7b3b70ede29a60ff4d1fb18b24316e2515df5982ddc44a5",
    "block_1_state_root": "86ae4e70471a2e37def593db5e8089604be0cd6f03800b3b8bf025d9bd9698ea",
    "block_1_receipts_hash": "7286b064cf16d06cbcab28d6b098555a084fdfafe6c977c63f78b6940d7e7fb4",
    "block_2_state_root": "a2113fccf97b75198820f2e1febb54f4698978021f71b5ab1e300793f7150f61",
    "block_2_receipts_hash": "d346db2e8c8ede2030fce3ba620564141d4c4ebb9a6900fc34d3a3fd83b607f8",
    "block_3_state_root": "e00f5abdeae912de365f212fb35f78dd8d318c9f6bdff9d0a69a0aff0f95d934",
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
