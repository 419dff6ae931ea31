"""Dishonest executors, for calibration and tests: cheaper or different models, forged results,
and the real model with a bent sampler (narrowed parameters, steering).

The model frauds are written into a scratch directory at calibration or test time (never
committed, never downloaded): a requantisation made with llama.cpp's own quantize API, and a copy
of the GGUF file whose quantised weights are perturbed through the `gguf` package. The result
frauds alter an honest result the way a lazy or malicious executor would.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from inference.engine import Chooser
from inference.errors import EngineError
from inference.result import InferenceJob, InferenceResult
from inference.sampler import candidate_scores, choose_token

# Q4_1 blocks: a float16 scale, a float16 minimum, then 32 packed 4-bit weights.
_Q4_1_BLOCK_BYTES = 20


def requantise(source: str | os.PathLike, target: str | os.PathLike, quantisation: str) -> Path:
    """Requantise a GGUF file with llama.cpp (e.g. 'Q4_0', 'Q8_0'); the cheaper-model fraud."""
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    file_type = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quantisation.upper()}", None)
    if file_type is None:
        raise EngineError(f"llama.cpp has no quantisation named {quantisation}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = file_type
    params.allow_requantize = True  # the source is already quantised (Q4_1)
    params.nthread = 2
    with suppress_stdout_stderr(disable=False):
        status = llama_cpp.llama_model_quantize(
            os.fsencode(source), os.fsencode(target), ctypes.byref(params)
        )
    if status != 0:
        raise EngineError(f"llama_model_quantize to {quantisation} failed with status {status}")
    return Path(target)


def perturb_weights(source: str | os.PathLike, target: str | os.PathLike, relative_scale: float,
                    seed: int = 1) -> Path:
    """Copy a GGUF file and multiply every Q4_1 block's scale by 1 + relative_scale x N(0, 1).

    A stand-in for a different fine-tune of the same architecture: every quantised weight moves,
    the file stays a valid model of the same shape and vocabulary.
    """
    from gguf import GGMLQuantizationType, GGUFReader

    shutil.copyfile(source, target)
    reader = GGUFReader(os.fspath(target), "r+")
    generator = np.random.default_rng(seed)
    for tensor in reader.tensors:
        if tensor.tensor_type != GGMLQuantizationType.Q4_1:
            continue
        blocks = tensor.data.reshape(-1, _Q4_1_BLOCK_BYTES)
        scales = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)
        jitter = 1.0 + relative_scale * generator.standard_normal(scales.shape)
        blocks[:, 0:2] = (scales * jitter).astype(np.float16).view(np.uint8)
    reader.data.flush()
    del reader
    return Path(target)


# -- forged results --------------------------------------------------------------------------


def fraud_rng(result: InferenceResult, purpose: str) -> np.random.Generator:
    """A random generator fixed by the job and the purpose, so calibration runs repeat exactly."""
    digest = hashlib.blake2b(result.job.job_id + purpose.encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def replace_tokens(result: InferenceResult, count: int, vocabulary_size: int, end_tokens: set[int],
                   detokenize) -> InferenceResult:
    """Replace `count` tokens at random positions by random ordinary tokens (a final end token stays)."""
    tokens = list(result.tokens)
    last = len(tokens) - 1 if tokens and tokens[-1] in end_tokens else len(tokens)
    if last <= 0:
        return result
    rng = fraud_rng(result, f"replace {count}")
    positions = rng.choice(last, size=min(count, last), replace=False)
    for position in positions:
        tokens[position] = _other_token(rng, tokens[position], vocabulary_size, end_tokens)
    return result.replace(tokens=tuple(tokens), text=detokenize(tokens))


def _other_token(rng: np.random.Generator, original: int, vocabulary_size: int, end_tokens: set[int]) -> int:
    while True:
        token = int(rng.integers(0, vocabulary_size))
        if token != original and token not in end_tokens:
            return token


def truncate(result: InferenceResult, end_token: int, detokenize) -> InferenceResult:
    """Keep the first half of the output and end it with end-of-sequence, claiming it stopped there."""
    keep = max(1, len(result.tokens) // 2)
    tokens = list(result.tokens[:keep]) + [end_token]
    logprobs = result.logprobs_micronats[:keep] + (0,)  # replaced by the forger's scoring pass
    return result.replace(tokens=tuple(tokens), text=detokenize(tokens), logprobs_micronats=logprobs,
                          stop_reason="eos")


def claim_for(job_result: InferenceResult, tokens_from: InferenceResult) -> InferenceResult:
    """The output of one result (tokens, text, stop) claimed as the answer to another result's job."""
    return job_result.replace(
        tokens=tokens_from.tokens,
        text=tokens_from.text,
        logprobs_micronats=tokens_from.logprobs_micronats,
        stop_reason=tokens_from.stop_reason,
    )


def alter_logprobs(result: InferenceResult, largest_nats: float = 1.0) -> InferenceResult:
    """Move every log-probability by a random 0.1..largest_nats nats up or down (kept <= 0)."""
    rng = fraud_rng(result, "alter log-probabilities")
    shifts = rng.uniform(0.1, largest_nats, len(result.tokens)) * rng.choice((-1.0, 1.0), len(result.tokens))
    altered = np.minimum(0, np.asarray(result.logprobs_micronats) + np.round(shifts * 1_000_000))
    return result.replace(logprobs_micronats=tuple(int(value) for value in altered))


# -- executors that run the real model but choose differently ----------------------------------


def sampler_for(job: InferenceJob, **changes) -> Chooser:
    """The chain's sampler with other parameters than the job declares (lower T, smaller top-k...)."""
    params = dataclasses.replace(job.sampling, **changes)
    return lambda logits, position: choose_token(logits, params, job.job_id, position)


def forced_prefix(prefix: Sequence[int], then: Chooser) -> Chooser:
    """Claim `prefix` (made by the real model) for the first positions, then choose with `then`."""
    return lambda logits, position: prefix[position] if position < len(prefix) else then(logits, position)


class Steering:
    """The real model and the job's own sampler, but the runner-up taken wherever it is close.

    Close means within `within_logits` of the sampler's choice: of the raw logits for a greedy or
    top-k 1 job, of T x the Gumbel scores for a sampled one. This bends what a result says (a
    product name, a yes for a no) inside the tolerances an honest executor needs. `steered`
    counts the positions where the runner-up was taken.
    """

    def __init__(self, job: InferenceJob, within_logits: float):
        self.job = job
        self.within = within_logits
        self.steered = 0

    def __call__(self, logits: np.ndarray, position: int) -> int:
        params = self.job.sampling
        if params.greedy or params.top_k == 1:
            ids = np.arange(len(logits))
            scores = np.asarray(logits, dtype=np.float64)
            scale = 1.0
        else:
            ids, scores = candidate_scores(logits, params, self.job.job_id, position)
            scale = params.temperature
        if len(ids) < 2:
            return int(ids[0])
        second, best = np.argpartition(scores, len(scores) - 2)[-2:]
        if scale * (scores[best] - scores[second]) <= self.within:
            self.steered += 1
            return int(ids[second])
        return int(ids[best])
