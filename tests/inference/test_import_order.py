"""The engine loads and evaluates whatever was imported first, and a build that cannot is named in one line.

A CUDA build of llama-cpp-python linked with a static C++ runtime crashed while loading the model
when numpy was imported before llama_cpp (two C++ runtimes in one process; docs/verification.md,
section 10). inferchain's commands import numpy first, so `load_crash` loads the model in a fresh
process in that order, and the worker refuses a GPU build for which it fails (chain/cli/worker.py).
On this build it must load; a crash is told from a plain load failure.
"""

from __future__ import annotations

from inference.loading import load_crash
from inference.model_store import ModelStore
from tests.inference.conftest import tiny_gguf


def test_numpy_imported_before_llama_cpp_loads_the_model_and_evaluates(tmp_path):
    record = ModelStore(tmp_path / "models").embedded()
    assert load_crash(record.path, gpu_layers=0) is None


def test_a_file_llama_cpp_cannot_load_is_named_as_a_load_failure_not_a_crash(tmp_path):
    problem = load_crash(tiny_gguf(tmp_path / "broken.gguf"), gpu_layers=0)
    assert problem is not None and problem.startswith("a fresh process could not load the model: ")
    assert "died with" not in problem
