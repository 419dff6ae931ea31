"""Loading a model from the store into an engine, with every check a node wants first."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys

from inference.engine import Engine, EngineConfig
from inference.gguf_header import read_header
from inference.model_store import ModelRecord, ModelStore


def load_engine(store: ModelStore, reference: str | None = None, config: EngineConfig = EngineConfig()) -> Engine:
    """Resolve a model (None: the embedded one), check its file and hash, and load it.

    The context is capped at the model's trained context length: llama.cpp would accept a
    larger one and then produce garbage beyond it.
    """
    record = store.resolve(reference)
    return load_record(store, record, config)


def load_record(store: ModelStore, record: ModelRecord, config: EngineConfig = EngineConfig()) -> Engine:
    """Load a resolved model record (checked whole and by hash) into an engine."""
    header = read_header(record.path)
    path = store.verified_path(record)
    trained = header.context_length
    if trained and config.context > trained:
        config = dataclasses.replace(config, context=trained)
    return Engine(path, record.id, config)


# Loads a model in a fresh process with numpy imported first, as inferchain's commands import it, and
# evaluates one token.
_PROBE = """
import sys
import numpy
import llama_cpp
from inference.engine import Engine, EngineConfig
engine = Engine(sys.argv[1], "probe", EngineConfig(context=64, threads=1, gpu_layers=int(sys.argv[2])))
engine.output_logits(engine.tokenize("probe", add_bos=True), [engine.end_of_sequence_token])
engine.close()
"""
PROBE_TIMEOUT_S = 120.0


def load_crash(path: str | os.PathLike, gpu_layers: int) -> str | None:
    """Why this llama.cpp build cannot load and evaluate the model in a process that imported numpy first (a
    CUDA build with a static C++ runtime died there with a segmentation fault); None when it can.

    Run in a child process, so that a build that crashes does not take its caller down with it.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, os.fspath(path), str(gpu_layers)], cwd=root,
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                              env={**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")})
    except subprocess.TimeoutExpired:
        return f"loading the model in a fresh process took more than {PROBE_TIMEOUT_S:.0f} s"
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        return f"a process that imported numpy before llama_cpp died with {name} loading the model"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"a fresh process could not load the model: {last}"
    return None
