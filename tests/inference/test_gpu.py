"""The engine with every layer on a GPU: generation there, judged by the verifier there and with no layers offloaded.

Skipped unless this llama.cpp build has a GPU backend (README: "For a GPU box, build the engine with
CUDA"). Self-contained (no conftest fixtures), so it also runs as
`pytest --noconftest tests/inference/test_gpu.py` where the chain's own dependencies are absent.
Measured on an H200 (README): the verification test is expected to fail there (GPU logits drift
beyond the CPU-calibrated thresholds), and a build with a static C++ runtime crashes this module
while loading the model, because numpy is imported before llama_cpp.
"""

from __future__ import annotations

import pytest

from inference.engine import Engine, EngineConfig, engine_version, gpu_offload_supported
from inference.model_store import ModelStore
from inference.thresholds import load_thresholds
from inference.verifier import rescore_and_judge
from tests.inference.conftest import FRESH_PROMPTS, SAMPLED, make_job

pytestmark = pytest.mark.skipif(not gpu_offload_supported(), reason="this llama.cpp build has no GPU backend")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The embedded model's record and the directory of its store."""
    directory = tmp_path_factory.mktemp("gpu-store") / "models"
    return ModelStore(directory).embedded(), directory


@pytest.fixture(scope="module")
def gpu_engine(model):
    """The embedded model with the default configuration: all layers on the GPU."""
    record, _ = model
    loaded = Engine(record.path, record.id, EngineConfig(context=1024))
    yield loaded
    loaded.close()


def test_every_layer_goes_to_the_gpu_by_default(gpu_engine):
    assert gpu_engine.config.gpu_layers == -1
    assert gpu_engine.device_description() == "GPU (all layers offloaded)"


def test_gpu_generation_is_repeatable(model):
    record, _ = model
    job = make_job(record.id, FRESH_PROMPTS[0], max_tokens=32, sampling=SAMPLED, label="gpu")
    fresh = Engine(record.path, record.id, EngineConfig(context=1024, reuse_prefix=False))
    try:
        assert fresh.generate(job) == fresh.generate(job)
    finally:
        fresh.close()


def test_gpu_results_pass_verification_on_the_gpu_and_without_offload(model, gpu_engine):
    record, directory = model
    thresholds = load_thresholds(record.id, directory, engine_version())
    jobs = [make_job(record.id, prompt, max_tokens=64, label="gpu greedy") for prompt in FRESH_PROMPTS[:2]]
    jobs += [make_job(record.id, prompt, max_tokens=64, sampling=SAMPLED, label="gpu sampled")
             for prompt in FRESH_PROMPTS[:2]]
    results = [gpu_engine.generate(job) for job in jobs]
    host = Engine(record.path, record.id, EngineConfig(threads=2, context=1024, gpu_layers=0))
    try:
        for result in results:
            for verifier in (gpu_engine, host):
                verdict = rescore_and_judge(result, verifier, thresholds)
                assert verdict.valid, (verifier.device_description(), verdict.reasons)
    finally:
        host.close()

