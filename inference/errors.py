"""Errors of the inference package: each carries one line a person can act on."""

from __future__ import annotations


class InferenceError(Exception):
    """Base of every error this package raises on purpose."""


class ModelStoreError(InferenceError):
    """A model could not be found, imported or trusted."""


class ModelNotFound(ModelStoreError):
    """No model in the store matches the given id or name."""


class InvalidModelFile(ModelStoreError):
    """A file is missing, truncated, or not GGUF."""


class ModelHashMismatch(ModelStoreError):
    """A stored file's content no longer hashes to its id."""


class JobDoesNotFit(InferenceError):
    """A prompt, or prompt plus max_tokens, is larger than the context."""


class InvalidJob(InferenceError):
    """A job's parameters are out of range."""


class InvalidResult(InferenceError):
    """A result document cannot be read as an inference result."""


class ThresholdsNotFound(InferenceError):
    """No calibrated verification thresholds exist for a model."""


class InvalidThresholds(InferenceError):
    """A thresholds file (or a registered model's thresholds) cannot be read or used."""


class EngineError(InferenceError):
    """llama.cpp failed to load a model or to evaluate tokens."""
