"""Inference: model store, llama.cpp engine, the chain's sampler, and the verifier (no chain code).

What the chain calls (DESIGN.md section 6; the rules are specified in docs/verification.md):

    store = ModelStore(base_path / "models")          # content-addressed GGUF files + the embedded model
    engine = load_engine(store, model_id, EngineConfig(threads=..., gpu_layers=...))
    result = engine.generate(InferenceJob(model_id, job_id, prompt, max_tokens, SamplingParams(...)))
    verdict = verify(result, engine, load_thresholds(model_id, store.directory, engine_version()))

Results and verdicts are frozen dataclasses with `to_json()` / `from_json()`.
"""

from inference.engine import Engine, EngineConfig, engine_version
from inference.errors import (
    EngineError,
    InferenceError,
    InvalidJob,
    InvalidModelFile,
    InvalidResult,
    JobDoesNotFit,
    ModelHashMismatch,
    ModelNotFound,
    ModelStoreError,
    ThresholdsNotFound,
)
from inference.loading import load_engine, load_record
from inference.model_store import ModelRecord, ModelStore, content_id
from inference.result import LOGPROB_SCALE, InferenceJob, InferenceResult
from inference.sampler import SamplingParams
from inference.thresholds import Thresholds, load_thresholds
from inference.verifier import Verdict, verify

__all__ = [
    "Engine", "EngineConfig", "engine_version", "load_engine", "load_record",
    "ModelStore", "ModelRecord", "content_id",
    "InferenceJob", "InferenceResult", "LOGPROB_SCALE", "SamplingParams",
    "Thresholds", "load_thresholds", "Verdict", "verify",
    "InferenceError", "EngineError", "InvalidJob", "InvalidModelFile", "InvalidResult", "JobDoesNotFit",
    "ModelHashMismatch", "ModelNotFound", "ModelStoreError", "ThresholdsNotFound",
]
