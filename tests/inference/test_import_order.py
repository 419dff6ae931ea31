"""The engine loads and evaluates whatever was imported first.

A CUDA build of llama-cpp-python linked with a static C++ runtime crashed while loading the model
when numpy was imported before llama_cpp (two C++ runtimes in one process; docs/verification.md,
"Device classes"). The worker imports numpy first, so this runs in a fresh process in that order
and fails, rather than skips, on a build that crashes: build it as bench/gpu/README.md says.
"""

from __future__ import annotations

import subprocess
import sys

from tests.nodes import ROOT

NUMPY_FIRST = """
import numpy
import llama_cpp
from inference.engine import Engine, EngineConfig
from inference.model_store import ModelStore
import sys
record = ModelStore(sys.argv[1]).embedded()
engine = Engine(record.path, record.id, EngineConfig(context=256, threads=1))
logits = engine.output_logits(engine.prompt_tokens("Hello"), [engine.end_of_sequence_token])
assert logits.shape == (1, engine.vocabulary_size) and numpy.isfinite(logits).all()
engine.close()
print("evaluated")
"""


def test_numpy_imported_before_llama_cpp_loads_the_model_and_evaluates(tmp_path):
    done = subprocess.run([sys.executable, "-c", NUMPY_FIRST, str(tmp_path / "models")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.strip().endswith("evaluated")
