"""Loading a model from the store into an engine, with every check a node wants first."""

from __future__ import annotations

import dataclasses

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
