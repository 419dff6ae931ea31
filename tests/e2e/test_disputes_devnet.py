"""Issue 25 end to end: on a real 4-validator devnet, a forged reveal at redundancy 1 is challenged, the
committee (the validators' workers re-scoring with the real model) votes, the forger is slashed and jailed
and the poster made whole; an honest executor's result, challenged the same way, is judged valid and
nobody is slashed for it.

Runs bench/security.py (the security bench, which starts the devnet, the workers and the adversary) on
two of its rows, with every settled job challenged instead of audited.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.commands import ROOT

pytestmark = pytest.mark.slow


def test_a_forged_result_is_challenged_judged_and_its_forger_slashed_and_jailed(tmp_path):
    output = tmp_path / "security.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "security.py"), "--quick", "--challenge",
         "--rows", "edit-tokens,honest-1-thread", "--timeout", "900", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=1500,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    rows = {row["name"]: row for row in json.loads(output.read_text())["rows"]}
    forged, honest = rows["edit-tokens"], rows["honest-1-thread"]
    assert forged["jobs"] == 1, forged
    assert forged["detected"] == forged["slashed"] == forged["made_whole"] == 1, forged
    assert forged["jailed"] is True and forged["offences"] == {"invalid_result": 1}, forged
    assert honest["jobs"] == honest["judged"] == 1 and honest["detected"] == 0, honest
    assert forged["wrongly_slashed"] == honest["wrongly_slashed"] == honest["slashed"] == 0
