"""Running the real `inferchain` console entry in a subprocess, and checking its one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def inferchain(*args: str, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `inferchain ARGS` to completion, with no standard input, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "chain.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
        # The console entry must find the checkout's packages from any working directory.
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single `error: ...` line a failed command printed, with no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]
