"""Inference: model store, llama.cpp engine, the chain's sampler, and the verifier (no chain code).

What the chain calls (DESIGN.md section 6; the rules are specified in docs/verification.md):

    store = ModelStore(base_path / "models")          # content-addressed GGUF files + the embedded model
    engine = load_engine(store, model_id, EngineConfig(threads=..., gpu_layers=...))
    result = engine.generate(InferenceJob(model_id, job_id, prompt, max_tokens, SamplingParams(...)))
    verdict = rescore_and_judge(result, engine, registered_thresholds(model_info))  # the chain's ModelInfo

Results and verdicts are frozen dataclasses with `to_json()` / `from_json()`.
"""

from inference.engine import Engine, EngineConfig, engine_version
from inference.errors import (
    EngineError,
    InferenceError,
    InvalidJob,
    InvalidModelFile,
    InvalidResult,
    InvalidThresholds,
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
from inference.registration import registered_thresholds
from inference.thresholds import Thresholds, load_thresholds, read_thresholds_file
from inference.verifier import Verdict, rescore_and_judge

__all__ = [
    "Engine", "EngineConfig", "engine_version", "load_engine", "load_record",
    "ModelStore", "ModelRecord", "content_id",
    "InferenceJob", "InferenceResult", "LOGPROB_SCALE", "SamplingParams",
    "Thresholds", "registered_thresholds", "read_thresholds_file", "load_thresholds", "Verdict", "rescore_and_judge",
    "InferenceError", "EngineError", "InvalidJob", "InvalidModelFile", "InvalidResult", "InvalidThresholds",
    "JobDoesNotFit",
    "ModelHashMismatch", "ModelNotFound", "ModelStoreError", "ThresholdsNotFound",
]
